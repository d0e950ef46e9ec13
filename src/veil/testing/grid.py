"""An in-process grid of storage nodes behind the data path's one seam (tahoe-lafs no_network.py).

``Grid(root, count)`` makes ``count`` storage nodes, each a real ``ShareStore`` on disk under
``root``, and a ``GridTransport`` that answers ``StorageTransport`` calls from them directly:
the same checks and bodies as the HTTP storage role (protocol/storage.py v2: slots keyed by
manifest hash, commit with manifest, one-shot shares, range replies with the manifest), without
sockets or processes. ``grid.network()`` is a ``Network`` whose transport is the grid, so upload,
download, locate, check and repair run end to end in a unit test.

Faults, per node (``grid.nodes[i]``): ``dead`` (every request fails as unreachable), ``stall``
(seconds each request hangs before it is served, ``stall_reads`` only range reads; past the caller's deadline it fails with
``DeadlineExceeded`` as a dripping node would), ``corrupt`` (range replies have one block byte
flipped), ``full`` (uploads refused with 507), ``needs_ticket`` (storing requests without a storage ticket
refused with 402; tickets given are checked and kept in ``tickets``), ``slot_reply`` (a function
through which the node's answers to mutable slot reads pass: a stale or lying node). Each node
also keeps mutable slots in a real ``MutableStore`` (``slots``), as the ``mutable`` role does.
Every request is counted per node and kind in
``requests``, so tests can assert how many exchanges an operation took.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veil.client.network import Network
from veil.errors import (
    IntegrityError,
    NotFoundError,
    PaymentRequiredError,
    RemoteError,
    StorageFullError,
    UnavailableError,
    UsageError,
    VeilError,
)
from veil.format.mutable import Checkstring
from veil.protocol.mutable import VersionInfo
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import Commit, UploadRequest, parse_range_head
from veil.protocol.tickets import check_ticket, parse_ticket
from veil.protocol.transport import CONTROL_TIMEOUT, DeadlineExceeded, RangeAnswer, SlotListing, SlotWrite
from veil.storage.mutable import MutableStore, SlotConflict
from veil.storage.store import ConflictError, ShareStore


@dataclass
class GridNode:
    info: NodeInfo
    store: ShareStore
    dead: bool = False
    stall: float = 0.0
    stall_reads: float = 0.0  # only range reads hang (the node lists its shares promptly)
    corrupt: bool = False
    full: bool = False
    needs_ticket: bool = False  # storage admission by ticket: storing requests without one get 402
    tickets: list[str] = field(default_factory=list)  # the tickets storing requests carried
    slots: MutableStore | None = None
    slot_reply: Callable[[bytes | None], bytes | None] | None = None
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def mutable(self) -> MutableStore:
        assert self.slots is not None
        return self.slots

    @property
    def label(self) -> str:
        return self.info.label


class Grid:
    def __init__(self, root: Path, count: int = 10, capacity: int | None = None) -> None:
        self.root = root
        self.nodes: list[GridNode] = []
        self._woken = threading.Event()
        for i in range(count):
            self.add_node(capacity, name=f"grid{i}")

    def add_node(self, capacity: int | None = None, name: str = "") -> GridNode:
        nid = os.urandom(32)  # node ids are hashes of keys; the grid needs no key
        name = name or f"grid{len(self.nodes)}"
        info = NodeInfo(name, 1 + len(self.nodes), nid, name)  # one host per node: no shared family
        node = GridNode(info, ShareStore(self.root / name, capacity),
                        slots=MutableStore(self.root / f"{name}-slots.sqlite"))
        self.nodes.append(node)
        return node

    def node(self, info: NodeInfo) -> GridNode:
        for n in self.nodes:
            if n.info.node_id == info.node_id:
                return n
        raise UnavailableError(f"{info.label} is not on this grid")

    def wipe(self, node: GridNode) -> None:
        """Lose everything the node stored (a disk replaced)."""
        shutil.rmtree(node.store.root, ignore_errors=True)
        node.store.close()
        node.store = ShareStore(node.store.root, node.store.capacity)
        path = self.root / f"{node.info.name}-slots.sqlite"
        node.mutable.close()
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        node.slots = MutableStore(path)

    def network(self) -> Network:
        return Network(nodes=[n.info for n in self.nodes], transport=GridTransport(self))

    def requests(self, kind: str | None = None) -> int:
        return sum(n.requests[kind] if kind else sum(n.requests.values()) for n in self.nodes)

    def reset_counts(self) -> None:
        for n in self.nodes:
            n.requests.clear()

    def close(self) -> None:
        """Wake every stalled request (they fail) and close the stores."""
        self._woken.set()
        for n in self.nodes:
            n.store.close()
            n.mutable.close()


class GridTransport:
    """``StorageTransport`` served from the grid's ShareStores, with the grid's faults."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def _enter(self, info: NodeInfo, kind: str, timeout: float) -> GridNode:
        node = self.grid.node(info)
        node.requests[kind] += 1
        if node.dead:
            raise UnavailableError(f"node {info.label} unreachable: connection refused (grid: dead)")
        stall = max(node.stall, node.stall_reads if kind == "read" else 0.0)
        if stall > 0:
            if self.grid._woken.wait(min(stall, timeout)) or stall >= timeout:
                raise DeadlineExceeded(f"node {info.label} did not answer within {timeout:g} s")
        return node

    @staticmethod
    def _wire(node: GridNode, e: VeilError) -> VeilError:
        """What the client would see over HTTP for a store error."""
        where = f"node {node.label}"
        if isinstance(e, ConflictError):
            return RemoteError(f"{where}: {e} (conflict)")
        if isinstance(e, NotFoundError):
            return NotFoundError(f"{where}: {e}")
        if isinstance(e, StorageFullError):
            return StorageFullError(f"{where}: {e}")
        if isinstance(e, IntegrityError | UsageError):
            return RemoteError(f"{where}: {e} (bad_request)")
        return e

    @staticmethod
    def _admit(g: GridNode, si: bytes, ticket: str | None) -> None:
        """The ticket check of a node in ``ticket`` mode (signature, node, index, expiry; no quota)."""
        if ticket is not None:
            t = parse_ticket(ticket)
            check_ticket(t, g.info.node_id, si, time.time())
            g.tickets.append(ticket)
        elif g.needs_ticket:
            raise PaymentRequiredError(f"node {g.label}: this node stores shares only with a storage ticket")

    def begin(self, node: NodeInfo, req: UploadRequest, timeout: float = CONTROL_TIMEOUT,
              ticket: str | None = None) -> str:  # fmt: skip
        g = self._enter(node, "begin", timeout)
        self._admit(g, req.si, ticket)
        if g.full:
            raise StorageFullError(f"node {g.label}: no space (grid: full)")
        try:
            return g.store.begin_upload(req)
        except VeilError as e:
            raise self._wire(g, e) from e

    def write(self, node: NodeInfo, uid: str, start: int, body: bytes | memoryview, timeout: float) -> None:
        g = self._enter(node, "write", timeout)
        try:
            g.store.write_blocks(uid, start, memoryview(body))
        except VeilError as e:
            raise self._wire(g, e) from e

    def commit(self, node: NodeInfo, uid: str, commit: Commit, timeout: float = CONTROL_TIMEOUT) -> bytes:
        g = self._enter(node, "commit", timeout)
        try:
            return g.store.commit_upload(uid, commit)
        except VeilError as e:
            raise self._wire(g, e) from e

    def abort(self, node: NodeInfo, uid: str, timeout: float = CONTROL_TIMEOUT) -> None:
        try:
            g = self._enter(node, "abort", timeout)
            g.store.abort_upload(uid)
        except VeilError:
            pass

    def put_oneshot(self, node: NodeInfo, si: bytes, shnum: int, body: bytes, timeout: float,
                    ticket: str | None = None) -> bytes:  # fmt: skip
        g = self._enter(node, "oneshot", timeout)
        self._admit(g, si, ticket)
        if g.full:
            raise StorageFullError(f"node {g.label}: no space (grid: full)")
        try:
            return g.store.put_oneshot(si, shnum, body)
        except VeilError as e:
            raise self._wire(g, e) from e

    def list_slot(self, node: NodeInfo, si: bytes, mhash: bytes, timeout: float = CONTROL_TIMEOUT) -> SlotListing:
        g = self._enter(node, "list", timeout)
        shnums, man = g.store.list_shares(si, mhash)
        return SlotListing(tuple(shnums), man)

    def delete_slot(self, node: NodeInfo, si: bytes, mhash: bytes, key: bytes,
                    timeout: float = CONTROL_TIMEOUT) -> list[int]:  # fmt: skip
        g = self._enter(node, "delete", timeout)
        return g.store.delete_slot(si, mhash, key)

    def read_range(
        self, node: NodeInfo, si: bytes, mhash: bytes, shnum: int, start: int, count: int, *,
        timeout: float, into: memoryview | None = None, max_size: int = 0, manifest: bool = False,
        headers: dict[str, str] | None = None,
    ) -> RangeAnswer:
        g = self._enter(node, "read", timeout)
        try:
            data = bytearray(g.store.read_range_bytes(si, mhash, shnum, start, count, manifest))
        except VeilError as e:
            raise self._wire(g, e) from e
        if g.corrupt:
            head = parse_range_head(memoryview(data))
            if len(data) > head.size:
                data[head.size + (len(data) - head.size) // 2] ^= 0x01
        if into is None:
            if len(data) > max(max_size, 64 << 10):
                raise RemoteError(f"node {g.label}: reply of {len(data)} bytes exceeds the limit")
            return RangeAnswer(200, bytes(data), len(data))
        if len(data) > len(into):
            raise RemoteError(f"node {g.label}: reply of {len(data)} bytes is larger than expected")
        into[: len(data)] = data
        return RangeAnswer(200, into[: len(data)], len(data))

    def get_slot(self, node: NodeInfo, slot: bytes, seq: int | None = None,
                 timeout: float = CONTROL_TIMEOUT) -> bytes | None:
        g = self._enter(node, "slot-get", timeout)
        raw = g.mutable.get(slot, seq)
        return g.slot_reply(raw) if g.slot_reply is not None else raw

    def put_slot(self, node: NodeInfo, slot: bytes, record: bytes, expect: Checkstring | None,
                 timeout: float = CONTROL_TIMEOUT) -> SlotWrite:
        g = self._enter(node, "slot-put", timeout)
        try:
            g.mutable.put(slot, record, expect)
        except SlotConflict as e:
            return SlotWrite(False, g.slot_reply(e.current) if g.slot_reply is not None else e.current)
        except VeilError as e:
            raise self._wire(g, e) from e
        return SlotWrite(True)

    def slot_versions(self, node: NodeInfo, slot: bytes, timeout: float = CONTROL_TIMEOUT) -> list[VersionInfo]:
        return self._enter(node, "slot-versions", timeout).mutable.versions(slot)

    def close(self) -> None:
        pass
