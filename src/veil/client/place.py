"""Put n shares on nodes in rendezvous order, all in parallel, replacing nodes that refuse.

Share i goes to the i-th candidate of the network's placement order (rendezvous, ids that skip
the id puzzle dropped, one node per family first: client/network.py, protocol/family.py), so
replacements too come from fresh families while there are any; every share whose node refuses or fails is retried on the
next unused candidate, and once those run out on the used node holding fewest shares, round
after round (each round in parallel) until every share is placed or no node is left. Shared by
the streaming upload (``begin`` per share) and the one-shot small-file upload (the whole share
per request). The requests run on one pool shared by every upload in the process (threads are
not started per file: many small files at once would spend their time starting threads).
Imports from: veil.errors, veil.protocol, veil.client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from veil.errors import VeilError
from veil.protocol.family import families
from veil.protocol.nodeinfo import NodeInfo

T = TypeVar("T")
POOL_SIZE = 64  # as many as the storage transport lets be in flight (net/storage_transport.py)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="place")
        return _pool


def place_shares(order: list[NodeInfo], n: int, put: Callable[[int, NodeInfo], T],
                 problems: list[str]) -> dict[int, tuple[NodeInfo, T]]:  # fmt: skip
    """share number -> (node, what ``put`` returned) for every share that found a node."""
    placed: dict[int, tuple[NodeInfo, T]] = {}
    fresh = list(order)
    failed: set[bytes] = set()
    todo = list(range(n))
    ex = _shared_pool()
    while todo:
        plan: list[tuple[int, NodeInfo]] = []
        load: dict[bytes, int] = {}
        for node, _ in placed.values():
            load[node.node_id] = load.get(node.node_id, 0) + 1
        used = {node.node_id: node for node, _ in placed.values()}
        fams = {f for node, _ in placed.values() for f in families(node)}
        for shnum in todo:
            if fresh:
                # A replacement comes from a family holding no share yet, while there is one.
                node = fresh.pop(next((i for i, c in enumerate(fresh) if not families(c) & fams), 0))
            else:
                spare = [u for u in used.values() if u.node_id not in failed]
                if not spare:
                    break
                node = min(spare, key=lambda u: load.get(u.node_id, 0))
            load[node.node_id] = load.get(node.node_id, 0) + 1
            used[node.node_id] = node
            fams |= families(node)
            plan.append((shnum, node))
        if not plan:
            break

        def one(job: tuple[int, NodeInfo]) -> tuple[int, NodeInfo, T | None, VeilError | None]:
            shnum, node = job
            try:
                return shnum, node, put(shnum, node), None
            except VeilError as e:
                return shnum, node, None, e

        todo = []
        for shnum, node, got, err in ex.map(one, plan):
            if err is None:
                placed[shnum] = (node, got)  # type: ignore[assignment]
            else:
                problems.append(f"{node.label}: {err}")
                failed.add(node.node_id)
                todo.append(shnum)
        todo.sort()
    return placed
