"""`veil sim shards`: the shard plan of docs/specs/ledger-scale.md as a discrete-event model.

Accounts are split by address prefix over ``S`` shards; each shard is one validator cluster that
closes a block every ``block_s`` seconds and can do ``capacity = rate × block_s`` units of work
per block, where ``rate`` is the measured single-cluster rate (signed transfers/s into blocks).
Every simulated transfer is followed individually:

* a transfer whose payer and payee are in the same shard costs 1 unit and completes in the
  block that includes it;
* a cross-shard transfer (a ``cross`` share of all, destination uniform over the other shards) is
  TON's message-passing transfer: the source shard debits the payer and emits an outbound message
  in its block (1 unit); once that block is final the destination shard takes the message into
  one of its next blocks, checks it against the source block's certificate, and credits the
  payee (``in_cost`` units). Inbound messages go before new transactions (TON's rule, so value in
  flight cannot pile up), and a message is taken exactly once (its id is spent in the destination's
  state), so the value debited equals the value credited plus what is in flight, at every step;
  the model checks that.

Offered load arrives at each shard every block (Poisson-like: the mean plus a random rounding).
The run reports, per shard count, the completed transfers per second at saturation, the same per
shard, the ratio to one shard, the closed-form ``S × rate / (1 + cross × in_cost)`` it should
approach, and the latency of local and cross-shard transfers (p50, p99, counted in whole blocks) at
``load`` (default 90 %) of that ceiling.
Pure; no I/O except the optional rate measurement done by the caller.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ShardPoint:
    shards: int
    cross: float
    throughput: float  # completed transfers/s, all shards, at saturation
    per_shard: float
    ratio_to_one: float  # throughput / the one-shard throughput at the same cross share
    analytic: float  # S * rate / (1 + cross * in_cost)
    p50_local_ms: float
    p99_local_ms: float
    p50_cross_ms: float
    p99_cross_ms: float
    in_flight_end: int  # messages debited, not yet credited, when the run stopped (saturated run)
    conserved: bool  # debited == credited + in flight, checked every block

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ShardSimResult:
    rate: float
    block_s: float
    in_cost: float
    blocks: int
    points: list[ShardPoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "block_s": self.block_s, "in_cost": self.in_cost, "blocks": self.blocks,
                "points": [p.to_dict() for p in self.points]}  # fmt: skip


def _pct(xs: list[int], q: float) -> float:
    if not xs:
        return 0.0
    xs.sort()
    return float(xs[min(len(xs) - 1, int(q * len(xs)))])


def _run(shards: int, cross: float, capacity: float, in_cost: float, offered: float, blocks: int,
         rng: random.Random) -> tuple[int, list[int], list[int], int, bool]:  # fmt: skip
    """Completed transfers over the last half of ``blocks``, local and cross latencies (in blocks),
    messages in flight at the end, conservation held."""
    new: list[deque[tuple[int, int]]] = [deque() for _ in range(shards)]  # (created, destination or -1)
    inbound: list[deque[tuple[int, int]]] = [deque() for _ in range(shards)]  # (usable from block, created)
    debited = credited = 0
    done = 0
    lat_local: list[int] = []
    lat_cross: list[int] = []
    conserved = True
    warm = blocks // 2
    for t in range(blocks):
        for i in range(shards):
            n = max(0, round(rng.gauss(offered, offered**0.5)))  # Poisson arrivals (normal approximation)
            q = new[i]
            for _ in range(n):
                if shards > 1 and rng.random() < cross:
                    d = rng.randrange(shards - 1)
                    q.append((t, d + (d >= i)))
                else:
                    q.append((t, -1))
        in_flight_before = debited - credited
        emitted: list[tuple[int, int, int]] = []
        for i in range(shards):
            cap = capacity
            inq = inbound[i]
            while inq and inq[0][0] <= t and cap >= in_cost:
                _, created = inq.popleft()
                cap -= in_cost
                credited += 1
                if t >= warm:
                    done += 1
                    lat_cross.append(t - created + 1)
            q = new[i]
            while q and cap >= 1:
                created, dest = q.popleft()
                cap -= 1
                if dest < 0:
                    if t >= warm:
                        done += 1
                        lat_local.append(t - created + 1)
                else:
                    debited += 1
                    emitted.append((dest, t + 1, created))  # usable once this block is final: the next block
        for dest, usable, created in emitted:
            inbound[dest].append((usable, created))
        in_flight = sum(len(x) for x in inbound)
        if debited - credited != in_flight or in_flight < 0 or in_flight_before < 0:
            conserved = False
    return done, lat_local, lat_cross, debited - credited, conserved


def run(rate: float, shard_counts: list[int], cross_shares: list[float], block_s: float = 0.1, in_cost: float = 1.0,
        blocks: int = 80, scale: int = 200, seed: int = 1, load: float = 0.9) -> ShardSimResult:  # fmt: skip
    """Simulate every (shard count, cross share). ``scale`` is the work units per block simulated
    (each one a transfer followed individually); the result is rescaled to ``rate``, which is exact
    because the model is linear in the block capacity."""
    if rate <= 0 or block_s <= 0 or not 0 < in_cost <= 10 or scale < 10 or blocks < 10 or not 0 < load < 1:
        raise ValueError("rate, block time, in-cost, scale and blocks must be positive (in-cost at most 10)")
    if any(s < 1 or s > 1024 for s in shard_counts) or any(not 0 <= x <= 1 for x in cross_shares):
        raise ValueError("shards must be 1..1024 and cross shares 0..1")
    rng = random.Random(seed)
    res = ShardSimResult(rate, block_s, in_cost, blocks)
    per_unit = rate * block_s / scale  # real transfers per simulated one
    measured_window = (blocks - blocks // 2) * block_s
    done1, _, _, _, _ = _run(1, 0.0, scale, in_cost, scale * 1.5, blocks, rng)
    one = done1 * per_unit / measured_window  # one cluster, simulated the same way
    for x in cross_shares:
        for s in shard_counts:
            if s == 1 and x > 0 and 0 in cross_shares:
                continue  # one shard has no cross-shard transfers: already shown
            xs = x if s > 1 else 0.0
            sat = scale * 1.5  # offered beyond any shard's capacity: throughput is the ceiling
            done, _, _, flight, ok = _run(s, xs, scale, in_cost, sat, blocks, rng)
            thr = done * per_unit / measured_window
            part = load * scale / (1 + xs * in_cost)
            _, ll, lc, _, ok2 = _run(s, xs, scale, in_cost, part, blocks, rng)
            res.points.append(ShardPoint(
                shards=s, cross=xs, throughput=thr, per_shard=thr / s, ratio_to_one=thr / one,
                analytic=s * rate / (1 + xs * in_cost),
                p50_local_ms=_pct(ll, 0.5) * block_s * 1000, p99_local_ms=_pct(ll, 0.99) * block_s * 1000,
                p50_cross_ms=_pct(lc, 0.5) * block_s * 1000, p99_cross_ms=_pct(lc, 0.99) * block_s * 1000,
                in_flight_end=int(flight * per_unit), conserved=ok and ok2,
            ))  # fmt: skip
    return res
