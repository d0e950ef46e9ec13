"""The storage transport over direct pinned TLS: one keep-alive ``PeerClient`` pool per node.

Implements ``veil.protocol.transport.StorageTransport`` with the paths and bodies of
``veil.protocol.storage``; every call carries its whole-exchange deadline down to
``PeerClient.request``. ``MAX_IN_FLIGHT`` bounds the requests this transport has outstanding
at once and ``PER_NODE`` those to one node (many files at once share the pooled connections
instead of opening more, and wait here rather than overflow a node's per-address queue, which
answers 503 busy past 4 running + 16 waiting requests from one address: net/wire.py Limits).

Imports from: veil.errors, veil.format, veil.protocol, veil.net.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from veil.errors import IntegrityError, RemoteError
from veil.format import cbor
from veil.format.fields import require_map
from veil.format.mutable import MAX_RECORD, Checkstring
from veil.protocol import mutable as mp
from veil.protocol import storage as sp
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import Commit, UploadRequest
from veil.protocol.tickets import TICKET_HEADER
from veil.protocol.transport import CONTROL_TIMEOUT, RangeAnswer, SlotListing, SlotWrite

from .client import PeerClient, raise_for_reply

MAX_IN_FLIGHT = 64
PER_NODE = 8
_CBOR = {"Content-Type": "application/cbor"}


def parse_listing(v: Any) -> SlotListing:
    m = require_map(v, "share list", {"shares", "manifest"})
    shares, man = m.get("shares"), m.get("manifest")
    if not isinstance(shares, list) or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 255
                                               for s in shares):  # fmt: skip
        raise IntegrityError("malformed share list")
    if man is not None and not isinstance(man, bytes):
        raise IntegrityError("malformed manifest field")
    return SlotListing(tuple(shares), man)


def parse_root(v: Any, where: str) -> bytes:
    root = v.get("root") if isinstance(v, dict) else None
    if not isinstance(root, bytes) or len(root) != 32:
        raise RemoteError(f"{where}: bad reply to commit (no root)")
    return root


def _ticket(ticket: str | None) -> dict[str, str] | None:
    return {TICKET_HEADER: ticket} if ticket is not None else None


class TlsTransport:
    """``StorageTransport`` over pinned HTTPS to each node's own address."""

    def __init__(self, read_timeout: float = 30.0, max_in_flight: int = MAX_IN_FLIGHT, per_node: int = PER_NODE) -> None:
        self.read_timeout = read_timeout
        self._clients: dict[bytes, PeerClient] = {}
        self._lock = threading.Lock()
        self._all = threading.BoundedSemaphore(max_in_flight)
        self._per_node = per_node
        self._node_slots: dict[bytes, threading.BoundedSemaphore] = {}

    @contextmanager
    def _slot(self, node: NodeInfo) -> Iterator[None]:
        with self._lock:
            mine = self._node_slots.get(node.node_id)
            if mine is None:
                mine = self._node_slots[node.node_id] = threading.BoundedSemaphore(self._per_node)
        with mine, self._all:
            yield

    def peer(self, node: NodeInfo) -> PeerClient:
        with self._lock:
            c = self._clients.get(node.node_id)
            if c is None or (c.host, c.port) != (node.host, node.port):
                c = self._clients[node.node_id] = self.new_client(node)
            return c

    def new_client(self, node: NodeInfo) -> PeerClient:
        """A pinned client for ``node`` (a subclass may make it reach the node another way)."""
        return PeerClient(node.host, node.port, node.node_id, self.read_timeout)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def _call(self, node: NodeInfo, method: str, path: str, value: Any, timeout: float,
              headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        with self._slot(node):
            return self.peer(node).call(method, path, value, deadline=timeout, headers=headers)

    # -- StorageTransport ----------------------------------------------------------------
    def begin(self, node: NodeInfo, req: UploadRequest, timeout: float = CONTROL_TIMEOUT,
              ticket: str | None = None) -> str:  # fmt: skip
        reply = self._call(node, "POST", sp.uploads_path(), req.to_value(), timeout, _ticket(ticket))
        uid = reply.get("id") if isinstance(reply, dict) else None
        if not isinstance(uid, str) or not uid.isalnum() or len(uid) > 64:
            raise RemoteError(f"{node.label}: bad reply to upload request")
        return uid

    def write(self, node: NodeInfo, uid: str, start: int, body: bytes | memoryview, timeout: float) -> None:
        with self._slot(node):
            self.peer(node).request("PUT", sp.upload_path(uid, start), body, deadline=timeout)

    def commit(self, node: NodeInfo, uid: str, commit: Commit, timeout: float = CONTROL_TIMEOUT) -> bytes:
        with self._slot(node):
            r = self.peer(node).request("POST", sp.commit_path(uid), sp.encode_commit(commit), _CBOR, deadline=timeout)
        return parse_root(r.cbor(), node.label)

    def abort(self, node: NodeInfo, uid: str, timeout: float = CONTROL_TIMEOUT) -> None:
        try:
            with self._slot(node):
                self.peer(node).request("DELETE", sp.upload_path(uid), check=False, deadline=timeout)
        except Exception:  # best effort by contract: the node reaps idle sessions itself
            pass

    def put_oneshot(self, node: NodeInfo, si: bytes, shnum: int, body: bytes, timeout: float,
                    ticket: str | None = None) -> bytes:  # fmt: skip
        with self._slot(node):
            r = self.peer(node).request("PUT", sp.oneshot_path(si, shnum), body, _ticket(ticket), deadline=timeout)
        return parse_root(r.cbor(), node.label)

    def list_slot(self, node: NodeInfo, si: bytes, mhash: bytes, timeout: float = CONTROL_TIMEOUT) -> SlotListing:
        return parse_listing(self._call(node, "GET", sp.slot_path(si, mhash), None, timeout))

    def delete_slot(self, node: NodeInfo, si: bytes, mhash: bytes, key: bytes,
                    timeout: float = CONTROL_TIMEOUT) -> list[int]:  # fmt: skip
        with self._slot(node):
            r = self.peer(node).request("DELETE", sp.delete_path(si, mhash), sp.encode_delete(key), _CBOR,
                                        deadline=timeout)  # fmt: skip
        v = r.cbor()
        gone = v.get("deleted") if isinstance(v, dict) else None
        if not isinstance(gone, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in gone):
            raise RemoteError(f"{node.label}: bad reply to a delete")
        return gone

    def read_range(
        self, node: NodeInfo, si: bytes, mhash: bytes, shnum: int, start: int, count: int, *,
        timeout: float, into: memoryview | None = None, max_size: int = 0, manifest: bool = False,
        headers: dict[str, str] | None = None,
    ) -> RangeAnswer:
        path = sp.range_path(si, mhash, shnum, start, count, manifest)
        peer = self.peer(node)
        with self._slot(node):
            r = peer.request("GET", path, headers=headers, into=into, max_response=max(max_size, 64 << 10),
                             check=False, deadline=timeout)  # fmt: skip
        if r.status == 200:
            n = int(r.headers.get("content-length", "0"))
            return RangeAnswer(200, r.body if into is None else into[:n], n)
        if r.status == 402:
            return RangeAnswer(402, r.body)
        raise_for_reply(r.status, r.body, peer.where)
        raise AssertionError("unreachable")

    def get_slot(self, node: NodeInfo, slot: bytes, seq: int | None = None,
                 timeout: float = CONTROL_TIMEOUT) -> bytes | None:
        peer = self.peer(node)
        with self._slot(node):
            r = peer.request("GET", mp.slot_path(slot, seq), max_response=MAX_RECORD, check=False, deadline=timeout)
        if r.status == 200:
            return r.body
        if r.status == 404:
            return None
        raise_for_reply(r.status, r.body, peer.where)
        raise AssertionError("unreachable")

    def put_slot(self, node: NodeInfo, slot: bytes, record: bytes, expect: Checkstring | None,
                 timeout: float = CONTROL_TIMEOUT) -> SlotWrite:
        peer = self.peer(node)
        with self._slot(node):
            r = peer.request("PUT", mp.put_path(slot, expect), record, max_response=mp.MAX_CONFLICT_REPLY,
                             check=False, deadline=timeout)  # fmt: skip
        if r.status == 200:
            return SlotWrite(True)
        if r.status == 409:
            return SlotWrite(False, mp.parse_conflict(r.body))
        raise_for_reply(r.status, r.body, peer.where)
        raise AssertionError("unreachable")

    def slot_versions(self, node: NodeInfo, slot: bytes, timeout: float = CONTROL_TIMEOUT) -> list[mp.VersionInfo]:
        with self._slot(node):
            r = self.peer(node).request("GET", mp.versions_path(slot), max_response=mp.MAX_VERSIONS_REPLY,
                                        deadline=timeout)  # fmt: skip
        return mp.parse_versions(cbor.decode(r.body, mp.MAX_VERSIONS_REPLY))
