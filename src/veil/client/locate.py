"""Find a file: ask nodes (in rendezvous order, in parallel) which shares of its slot they hold,
and get a manifest that matches the cap's manifest hash.

The nodes asked are the network's candidates for the storage index (every listed node, or
the DHT's nearest nodes) followed by the nodes whose provider records name the index: shares
repaired or handed over after churn may sit outside the first candidates. What a node says
it holds is only a claim; the blocks it serves are verified against the manifest.

Stragglers never hold a caller: the whole locate has a deadline (``LOCATE_TIMEOUT``), and it
returns early once it has a verified manifest and enough holders: every share number found
(then a short settle for second copies), or k of them and a grace as long again as that took
(at least ``GRACE``). Nodes that had not answered are named in ``unreachable``.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field

from veil.errors import IntegrityError, NotFoundError, UnavailableError, VeilError
from veil.format.manifest import Manifest, parse_manifest
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.transport import CONTROL_TIMEOUT, SlotListing

from .network import Network
from .workers import POOL

LOCATE_TIMEOUT = 10.0
GRACE = 0.25  # after k shares are found, wait at least this long (or as long again) for more
SETTLE = 0.05  # after every share number is found, wait this long for second copies



@dataclass
class Located:
    manifest: Manifest
    holders: dict[int, list[NodeInfo]]  # share number -> nodes that say they hold it
    asked: int
    unreachable: list[str] = field(default_factory=list)
    bad_manifest: list[str] = field(default_factory=list)

    def share_count(self) -> int:
        return len(self.holders)


def locate(net: Network, si: bytes, manifest_hash: bytes, timeout: float = LOCATE_TIMEOUT,
           order: list[NodeInfo] | None = None, grace: float = GRACE) -> Located:  # fmt: skip
    """``order``: the rendezvous candidates when the caller already has them. Provider records
    (DHT mode) are looked up alongside the first asks; their nodes are asked as they arrive,
    and not waited for once enough holders have answered. ``grace``: the least time to wait for
    more holders after k were found (a check, which counts shares, waits longer than a read)."""
    order = list(net.storage_nodes_for(si) if order is None else order)
    t0 = time.monotonic()
    deadline = t0 + timeout
    replies: queue.SimpleQueue[tuple[NodeInfo | None, SlotListing | list[NodeInfo] | None, str | None]]
    replies = queue.SimpleQueue()

    def ask(node: NodeInfo) -> None:
        try:
            ls = net.transport.list_slot(node, si, manifest_hash, timeout=min(CONTROL_TIMEOUT, timeout))
            replies.put((node, ls, None))
        except VeilError as e:
            replies.put((node, None, str(e)))

    def providers() -> None:
        try:
            replies.put((None, [node for node, _ in net.providers_of(si)], None))
        except VeilError as e:
            replies.put((None, [], f"provider lookup failed: {e}"))

    seen = {n.node_id for n in order}
    for cand in order:
        POOL.submit(ask, cand)
    pending_providers = net.discovery == "dht"
    if pending_providers:
        POOL.submit(providers)
    holders: dict[int, list[NodeInfo]] = {}
    manifest: Manifest | None = None
    unreachable: list[str] = []
    bad: list[str] = []
    answered: set[bytes] = set()
    enough_at: float | None = None
    full_at: float | None = None
    while len(answered) < len(order) or pending_providers:
        now = time.monotonic()
        wake = deadline
        if enough_at is not None:
            wake = min(wake, enough_at + max(grace, enough_at - t0))
        if full_at is not None:
            wake = min(wake, full_at + SETTLE)
        if now >= wake:
            break
        try:
            node, ls, err = replies.get(timeout=wake - now)
        except queue.Empty:
            break
        if node is None:  # the provider lookup: ask the nodes it names that were not asked yet
            pending_providers = False  # (a failed lookup just adds nobody: the candidates were asked)
            for extra in ls if isinstance(ls, list) else []:
                if extra.node_id not in seen:
                    seen.add(extra.node_id)
                    order.append(extra)
                    POOL.submit(ask, extra)
            continue
        answered.add(node.node_id)
        if err is not None or not isinstance(ls, SlotListing):
            unreachable.append(err or f"{node.label}: no answer")
            continue
        for s in ls.shares:
            holders.setdefault(s, []).append(node)
        if ls.manifest is not None and manifest is None:
            try:
                manifest = parse_manifest(ls.manifest, manifest_hash, si)
            except IntegrityError as e:
                bad.append(f"{node.label}: {e}")
        if manifest is not None:
            found = len([s for s in holders if s < manifest.n])
            now = time.monotonic()
            if enough_at is None and found >= manifest.k:
                enough_at = now
            if full_at is None and found >= manifest.n:
                full_at = now
    waited = time.monotonic() - t0
    for node in order:
        if node.node_id not in answered:
            unreachable.append(f"{node.label}: no answer within {waited:.1f} s (not waited for)")
    if manifest is None:
        if bad:
            raise IntegrityError(
                "the nodes' manifests for this storage index do not match the cap: " + "; ".join(bad[:3])
            )
        if unreachable and len(unreachable) == len(order):
            raise UnavailableError(f"none of the {len(order)} nodes could be reached: {unreachable[0]}")
        raise NotFoundError(
            f"no node has this file (asked {len(order)} nodes"
            + (f", {len(unreachable)} unreachable" if unreachable else "")
            + ")"
        )
    holders = {s: v for s, v in holders.items() if s < manifest.n}
    return Located(manifest, holders, len(order), unreachable, bad)
