"""Folders written and read at the format level (format/* + the nodes' /v1/mutable API), for the
browser tests: the CLI's folder commands are built elsewhere, and these tests must not depend on
them. Same node choice as the gateway (gateway/folders.py): the slot's first n storage nodes in
rendezvous order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from veil.client.network import Network
from veil.format.folder import Entry, Listing, sorted_listing
from veil.format.folder_caps import FolderReadCap, FolderWriteCap
from veil.format.folder_seal import open_body, seal_body
from veil.format.mutable import MAX_RECORD, Checkstring, SlotRecord, sign_record
from veil.format.mutable_cas import Latest, pick_latest
from veil.gateway.folders import slot_happy
from veil.protocol.mutable import put_path, slot_path
from veil.protocol.nodeinfo import NodeInfo

N = 10
OCTETS = {"Content-Type": "application/octet-stream"}


def slot_nodes(net: Network, slot: bytes) -> list[NodeInfo]:
    return net.storage_nodes_for(slot)[:N]


def read_latest(net: Network, slot: bytes) -> Latest:
    nodes = slot_nodes(net, slot)

    def one(node: NodeInfo) -> bytes | None:
        r = net.client(node).request("GET", slot_path(slot), max_response=MAX_RECORD, check=False)
        assert r.status in (200, 404), r.status
        return r.body if r.status == 200 else None

    with ThreadPoolExecutor(len(nodes)) as ex:
        replies = dict(enumerate(ex.map(one, nodes)))
    latest = pick_latest(replies, slot, len(nodes), slot_happy(len(nodes)))
    assert latest.decided and not latest.invalid
    return latest


def read_listing(net: Network, cap: FolderReadCap | FolderWriteCap) -> tuple[SlotRecord, Listing]:
    rc = cap.read_cap() if isinstance(cap, FolderWriteCap) else cap
    rec = read_latest(net, rc.slot_id).record
    assert rec is not None
    return rec, open_body(rc, rec.seq, rec.payload)


def put_raw(net: Network, slot: bytes, raw: bytes, expect: Checkstring | None, only: int | None = None) -> list[int]:
    """PUT one record to every slot node (or the first ``only``) with ``expect`` (None: the slot
    must be empty); their statuses."""

    def one(node: NodeInfo) -> int:
        return net.client(node).request("PUT", put_path(slot, expect), raw, OCTETS, check=False).status

    nodes = slot_nodes(net, slot)[:only]
    with ThreadPoolExecutor(len(nodes)) as ex:
        return list(ex.map(one, nodes))


def write_version(net: Network, w: FolderWriteCap, entries: list[Entry], base: SlotRecord | None = None) -> SlotRecord:
    """Sign and store the next version of ``w`` (built on ``base``) holding ``entries``."""
    seq = base.seq + 1 if base is not None else 1
    chain = (base.checkstring, *base.chain)[:8] if base is not None else ()
    rec = sign_record(w.signing_key, seq, seal_body(w, seq, sorted_listing(entries)), chain)
    statuses = put_raw(net, w.slot_id, rec.raw, base.checkstring if base is not None else None)
    assert statuses.count(200) >= slot_happy(len(statuses)), statuses
    return rec
