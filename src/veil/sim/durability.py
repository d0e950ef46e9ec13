"""`veil sim durability`: how many files survive a year of node failures, with and without repair.

Event-driven over a virtual year. Each of ``nodes`` node slots fails after an exponential
lifetime with annual failure probability ``failure_rate`` (rate -ln(1 - p) per year) and is at
once replaced by a new, empty node. Each file has ``n`` shares on ``n`` distinct nodes
(rendezvous placement spreads them uniformly, which is what a random choice models) and is lost
once fewer than ``k`` survive. With repair, a checker running every ``check_interval_hours``
finds files with fewer than ``repair_threshold`` healthy shares and re-creates the missing ones
on other nodes from any k, after ``repair_hours``. Both runs see the same failure trace.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

YEAR_HOURS = 365.25 * 24


@dataclass
class DurabilityRun:
    files_lost: int
    repairs: int
    shares_recreated: int


@dataclass
class DurabilityResult:
    nodes: int
    files: int
    years: float
    failure_rate: float
    k: int
    n: int
    repair_threshold: int
    check_interval_hours: float
    repair_hours: float
    node_failures: int
    without_repair: DurabilityRun
    with_repair: DurabilityRun
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failure_trace(nodes: int, years: float, failure_rate: float, seed: int) -> list[tuple[float, int]]:
    """(hour, node slot) of every failure in the period, in time order."""
    rng = random.Random(seed)
    if failure_rate <= 0:
        return []
    rate_per_hour = -math.log(1 - failure_rate) / YEAR_HOURS
    end = years * YEAR_HOURS
    out = []
    for slot in range(nodes):
        t = rng.expovariate(rate_per_hour)
        while t < end:
            out.append((t, slot))
            t += rng.expovariate(rate_per_hour)
    out.sort()
    return out


def _simulate(
    trace: list[tuple[float, int]],
    nodes: int,
    files: int,
    k: int,
    n: int,
    threshold: int | None,
    check_hours: float,
    repair_hours: float,
    seed: int,
) -> DurabilityRun:
    rng = random.Random(seed)
    holders: list[set[int]] = [set() for _ in range(files)]
    held: list[set[int]] = [set() for _ in range(nodes)]
    for f in range(files):
        for slot in rng.sample(range(nodes), n):
            holders[f].add(slot)
            held[slot].add(f)
    lost = [False] * files
    scheduled = [False] * files
    n_lost = repairs = recreated = 0
    # Events: (hour, order, kind, x); failures sort before repairs at the same instant.
    events: list[tuple[float, int, int, int]] = [(t, 0, 0, slot) for t, slot in trace]
    heapq.heapify(events)
    while events:
        t, _, kind, x = heapq.heappop(events)
        if kind == 0:  # node slot x fails and comes back empty
            for f in held[x]:
                h = holders[f]
                h.discard(x)
                if lost[f]:
                    continue
                if len(h) < k:
                    lost[f] = True
                    n_lost += 1
                elif threshold is not None and len(h) < threshold and not scheduled[f]:
                    scheduled[f] = True
                    found = math.ceil(t / check_hours) * check_hours if check_hours > 0 else t
                    heapq.heappush(events, (found + repair_hours, 1, 1, f))
            held[x] = set()
        else:  # repair file x from any k of its surviving shares
            scheduled[x] = False
            h = holders[x]
            if lost[x] or threshold is None or len(h) >= threshold:
                continue
            missing = n - len(h)
            candidates = [s for s in rng.sample(range(nodes), min(nodes, n + missing + len(h))) if s not in h]
            while len(candidates) < missing:
                s = rng.randrange(nodes)
                if s not in h and s not in candidates:
                    candidates.append(s)
            for s in candidates[:missing]:
                h.add(s)
                held[s].add(x)
            repairs += 1
            recreated += missing
    return DurabilityRun(files_lost=n_lost, repairs=repairs, shares_recreated=recreated)


def run(
    nodes: int = 1000,
    files: int = 10_000,
    years: float = 1.0,
    failure_rate: float = 0.1,
    k: int = 3,
    n: int = 10,
    repair_threshold: int = 7,
    check_interval_hours: float = 24.0,
    repair_hours: float = 1.0,
    seed: int = 1,
) -> DurabilityResult:
    if not 1 <= k <= repair_threshold <= n <= nodes:
        raise ValueError("need 1 <= k <= repair threshold <= n <= nodes")
    if not 0 <= failure_rate < 1 or years <= 0 or files < 1:
        raise ValueError("the failure rate is a yearly probability in [0, 1); years and files must be positive")
    t0 = time.monotonic()
    trace = _failure_trace(nodes, years, failure_rate, seed)
    args = (trace, nodes, files, k, n)
    without = _simulate(*args, None, check_interval_hours, repair_hours, seed + 1)
    with_r = _simulate(*args, repair_threshold, check_interval_hours, repair_hours, seed + 1)
    return DurabilityResult(
        nodes=nodes,
        files=files,
        years=years,
        failure_rate=failure_rate,
        k=k,
        n=n,
        repair_threshold=repair_threshold,
        check_interval_hours=check_interval_hours,
        repair_hours=repair_hours,
        node_failures=len(trace),
        without_repair=without,
        with_repair=with_r,
        wall_s=round(time.monotonic() - t0, 2),
    )
