"""Graceful leave (`veil node drain`): hand every share this node holds to other nodes.

For each storage index held here: locate the file (who holds which share), then for each
local share pick a new holder exactly as repair does (client/repair.py ``next_target``:
rendezvous order among the live candidates, nodes holding no share of the file and in no family
holding one first (protocol/family.py), never a node that already has that share number), stream the share's blocks from disk and commit them
with the slot's manifest (storage protocol v2: the share enters the same slot there). Only once the new holder has committed a
share with that root is the local copy deleted, so the count of copies never drops. When no
share of an index is left here, the node stops announcing it (``unprovide``); its old records
expire on their own. Each slot (storage index, manifest hash) is drained on its own. A share that finds no taker stays, and the drain reports it; a local copy that does not hash
to its own root is damaged, is handed to nobody, and is reported as such.

Imports from: veil.errors, veil.format, veil.protocol, veil.storage, veil.net, veil.client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from veil.client.locate import locate
from veil.client.network import Network, NodeInfo
from veil.client.repair import next_target
from veil.client.share_writer import ShareMismatch, ShareWriter
from veil.errors import IntegrityError, VeilError
from veil.net.dht_driver import DhtDriver
from veil.protocol.family import families
from veil.protocol.placement import dht_key
from veil.protocol.storage import UploadRequest
from veil.storage.store import ShareStore

log = logging.getLogger("veil.drain")


@dataclass
class DrainState:
    state: str = "idle"  # idle -> running -> done | failed
    moved: int = 0
    kept: list[str] = field(default_factory=list)  # good shares no node took: still here
    damaged: list[str] = field(default_factory=list)  # local copies that fail their own root: not handed on
    error: str = ""

    def to_value(self) -> dict[str, Any]:
        return {"state": self.state, "moved": self.moved, "kept": self.kept[:50], "damaged": self.damaged[:50],
                "error": self.error}


class Drainer:
    def __init__(self, store: ShareStore, net: Network, self_id: bytes, dht: DhtDriver | None) -> None:
        self.store, self.net, self.self_id, self.dht = store, net, self_id, dht
        self.status = DrainState()
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Start draining in the background; False if a drain already runs or finished."""
        with self._lock:
            if self.status.state in ("running", "done"):
                return False
            self.status = DrainState("running")
        threading.Thread(target=self._run, name="drain", daemon=True).start()
        return True

    def _run(self) -> None:
        try:
            for si in self.store.storage_indexes():
                self._drain_index(si)
            self.status.state = "done"
        except Exception as e:  # the status is how the operator learns of it
            log.exception("drain failed")
            self.status.error = str(e)[:300]
            self.status.state = "failed"

    def _drain_index(self, si: bytes) -> None:
        for mhash in self.store.slots(si):
            self._drain_slot(si, mhash)
        if self.dht is not None:
            left = sorted({n for m in self.store.slots(si) for n in self.store.list_shares(si, m)[0]})
            if left:
                self.dht.provide(dht_key(si), tuple(left))
            else:
                self.dht.unprovide(dht_key(si))

    def _drain_slot(self, si: bytes, mhash: bytes) -> None:
        shnums, mbytes = self.store.list_shares(si, mhash)
        if not shnums or mbytes is None:
            return
        held: dict[bytes, set[int]] = {}
        used: set[str] = set()  # families holding a share elsewhere: hand over outside them first
        candidates: list[NodeInfo] = []
        try:
            loc = locate(self.net, si, mhash)
            for shnum, nodes in loc.holders.items():
                for n in nodes:
                    held.setdefault(n.node_id, set()).add(shnum)
                    if n.node_id != self.self_id:
                        used |= families(n)
        except VeilError as e:
            log.info("drain: cannot locate %s: %s", si.hex()[:16], e)
        try:
            candidates = self.net.storage_nodes_for(si)
        except VeilError as e:
            self.status.kept.append(f"{si.hex()[:16]}: no candidate nodes: {e}")
            return
        held.pop(self.self_id, None)
        tried = {self.self_id}
        for shnum in shnums:
            node = self._hand_over(si, mhash, shnum, mbytes, candidates, held, tried, used)
            if node is None:
                continue
            used |= families(node)
            held.setdefault(node.node_id, set()).add(shnum)
            self.store.delete_share(si, mhash, shnum)
            self.status.moved += 1
            log.info("drain: share %d of %s handed to %s", shnum, si.hex()[:16], node.label)

    def _hand_over(
        self, si: bytes, mhash: bytes, shnum: int, mbytes: bytes, candidates: list[NodeInfo],
        held: dict[bytes, set[int]], tried: set[bytes], used: set[str],
    ) -> NodeInfo | None:
        while (node := next_target(candidates, held, shnum, tried, used)) is not None:
            writer: ShareWriter | None = None
            try:
                hdr, pairs = self.store.share_blocks(si, mhash, shnum)
                writer = ShareWriter(self.net, node, UploadRequest(si, shnum, hdr.nseg, hdr.bsize, hdr.lbsize))
                for leaf, block in _local(pairs):
                    writer.add(leaf, block)
                writer.commit(hdr.root, hdr.segroot, mbytes)
                return node
            except (ShareMismatch, OSError) as e:
                if writer is not None:
                    writer.abort()
                # Our own copy is damaged: nobody should get it (check counts it out anyway).
                self.status.damaged.append(f"{si.hex()[:16]}/{shnum}: {e}")
                return None
            except VeilError as e:
                if writer is not None:
                    writer.abort()
                log.info("drain: %s refused share %d of %s: %s", node.label, shnum, si.hex()[:16], e)
                tried.add(node.node_id)
        self.status.kept.append(f"{si.hex()[:16]}/{shnum}: no node took it")
        return None


def _local(pairs: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """The local share's blocks; a damaged local file is the sender's problem, not the receiver's."""
    try:
        yield from pairs
    except IntegrityError as e:
        raise ShareMismatch(f"local share: {e}") from e
