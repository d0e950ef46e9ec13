"""Folder slots for browsers: the newest verified record of a slot, and compare-and-swap writes
of records a browser signed (docs/specs/gateway.md, "Folders in the browser").

The gateway holds no folder key. It reads a slot from the slot's n nodes (the first 10 storage
nodes in rendezvous order of the slot id, as shares) and answers the version ``pick_latest``
resolves, so one stale or lying node cannot roll a folder back through it; the page checks the
signature and opens the sealed listing itself. A write is a record the page signed with the
write seed from its link: the gateway verifies it (a forged one is refused before any node sees
it) and offers it to every node with ``expect`` = the record's base, fast-forwarding a node that
holds one of the record's other parents (a writer's own earlier attempt). ``happy`` nodes must
accept; otherwise the page re-reads and tries again.

Imports from: veil.client, veil.errors, veil.format, veil.net, veil.protocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from veil.client.network import Network
from veil.errors import IntegrityError, UnavailableError, VeilError, WriteConflictError
from veil.format.mutable import MAX_RECORD, Checkstring, SlotRecord, parse_record
from veil.format.mutable_cas import Latest, pick_latest
from veil.net.server import HTTPError, Request, Response
from veil.protocol.mutable import parse_conflict, parse_slot_id, put_path, slot_path
from veil.protocol.nodeinfo import NodeInfo

NODE_TIMEOUT = 10.0
OCTETS = {"Content-Type": "application/octet-stream"}
T = TypeVar("T")


FOLDER_N = 10  # nodes a folder's slot lives on (fewer on a smaller network), as the CLI's client


def slot_happy(n: int) -> int:
    """How many of a slot's ``n`` nodes a write must reach: 7 of 10, and always a majority
    (docs/specs/folders.md: any two successful writes then share a node). The same rule as the
    CLI's folder client, so versions the page writes count as settled for it and back."""
    return max(n // 2 + 1, n * 7 // 10)


@dataclass(frozen=True)
class Written:
    record: Checkstring
    accepted: int
    n: int


class SlotGateway:
    def __init__(self, network: Callable[[], Network], n: int = FOLDER_N) -> None:
        self._network = network
        self.n = n
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="gw-slot")

    def nodes(self, slot: bytes) -> tuple[Network, list[NodeInfo], int]:
        net = self._network()
        nodes = net.storage_nodes_for(slot)[: self.n]
        return net, nodes, slot_happy(len(nodes))

    def read(self, slot: bytes) -> Latest:
        """The current version, from every one of the slot's nodes (so the answer is decided
        whenever they all answer); UnavailableError when too few answered to tell."""
        net, nodes, happy = self.nodes(slot)

        def one(node: NodeInfo) -> bytes | None:
            r = net.client(node, NODE_TIMEOUT).request("GET", slot_path(slot), max_response=MAX_RECORD, check=False)
            if r.status == 404:
                return None
            if r.status != 200:
                raise UnavailableError(f"node answered {r.status}")
            return r.body

        replies = self._gather(nodes, one)
        latest = pick_latest(replies, slot, len(nodes), happy)
        if not latest.decided:
            raise UnavailableError(f"cannot tell which version of the folder is current: only {len(replies)} "
                                   f"of {len(nodes)} of its nodes answered")
        return latest

    def write(self, slot: bytes, raw: bytes) -> Written:
        """Offer a signed record to the slot's nodes; Written once ``happy`` accepted it."""
        rec = parse_record(raw, slot)  # IntegrityError: forged, foreign or garbled
        net, nodes, happy = self.nodes(slot)
        base = rec.chain[0] if rec.chain_len else None
        parents = set(rec.parents)

        def one(node: NodeInfo) -> bool:
            client = net.client(node, NODE_TIMEOUT)
            expect = base
            for _ in range(2):
                r = client.request("PUT", put_path(slot, expect), raw, OCTETS, check=False)
                if r.status == 200:
                    return True
                if r.status != 409:
                    raise UnavailableError(f"node answered {r.status}")
                cur = _current(r.body, slot)
                # An empty node takes any version; a node holding another parent of this record
                # (the writer's own earlier attempt that reached it) moves on from that one.
                if cur is None and expect is not None:
                    expect = None
                elif cur is not None and cur.checkstring in parents and cur.checkstring != expect:
                    expect = cur.checkstring
                else:
                    return False
            return False

        answers = self._gather(nodes, one)
        accepted = sum(1 for ok in answers.values() if ok)
        if accepted >= happy:
            return Written(rec.checkstring, accepted, len(nodes))
        if len(answers) < happy:
            raise UnavailableError(f"only {len(answers)} of {len(nodes)} of the folder's nodes answered; "
                                   f"{happy} are needed to write")
        raise WriteConflictError(f"another writer changed the folder at the same time ({accepted} of "
                                 f"{len(nodes)} nodes took this version, {happy} needed): read it again and retry")

    def _gather(self, nodes: list[NodeInfo], fn: Callable[[NodeInfo], T]) -> dict[int, T]:
        """Node index -> answer, for the nodes that answered (a failure or timeout leaves it out)."""
        futs = {i: self._pool.submit(fn, node) for i, node in enumerate(nodes)}
        out: dict[int, T] = {}
        for i, f in futs.items():
            try:
                out[i] = f.result()
            except VeilError:
                pass
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- HTTP (routes added by gateway/app.py) --------------------------------------------------
    def get_handler(self, req: Request) -> Response:
        """``GET /api/mutable/{slot}``: the current record, raw; its anchor and holders in headers."""
        latest = self.read(_slot(req))
        if latest.record is None:
            raise HTTPError(404, "not_found", "no node holds this folder: it may never have been written, "
                            "or the link belongs to another network")
        anchor = latest.anchor.to_text() if latest.anchor is not None else "0"
        return Response(body=latest.record.raw, content_type="application/octet-stream",
                        headers={"X-Veil-Anchor": anchor, "X-Veil-Holders": f"{len(latest.holders)}",
                                 "X-Veil-Seq": str(latest.record.seq)})

    def put_handler(self, req: Request) -> Response:
        """``PUT /api/mutable/{slot}``: a record the page signed; 200, or 409 when a writer raced it."""
        slot = _slot(req)
        if req.content_length > MAX_RECORD:
            raise HTTPError(413, "too_large", f"a folder version is at most {MAX_RECORD} bytes")
        raw = req.read_body(MAX_RECORD)
        try:
            done = self.write(slot, raw)
        except IntegrityError as e:
            raise HTTPError(400, "bad_record", f"not a validly signed version of this folder: {e}") from e
        except WriteConflictError as e:
            raise HTTPError(409, "conflict", str(e)) from e
        body = {"seq": done.record.seq, "hash": done.record.hash.hex(), "accepted": done.accepted, "n": done.n}
        return Response(body=json.dumps(body).encode(), content_type="application/json")


def _slot(req: Request) -> bytes:
    try:
        return parse_slot_id(req.params["slot"])
    except IntegrityError as e:
        raise HTTPError(400, "bad_link", f"folder id: {e}") from e


def _current(body: bytes, slot: bytes) -> SlotRecord | None:
    try:
        raw = parse_conflict(body)
        return parse_record(raw, slot) if raw is not None else None
    except IntegrityError:
        return None
