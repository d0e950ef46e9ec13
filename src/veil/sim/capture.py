"""What an attacker pays to capture k of a file's n shares, before and after ids cost work.

The attack (issue 18, item 11): learn a file's storage index (any verify cap or link shows it),
mint node ids until enough of them rank first for it, join, and wait for upload or repair to
hand them the shares (then drop them). Each id is a uniformly random point for the two orders
that matter: XOR distance to the file's DHT key (which nodes a DHT client even considers: the
``candidates`` nearest) and the rendezvous hash H(si || id) (protocol/placement.py: share i goes
to the i-th candidate). Honest nodes are ``nodes`` such points, each in a family of its own.

- **before**: any key pair is an id (no puzzle), and placement ignores families, so one machine
  on one address can hold all k shares; an id costs one key generation.
- **after**: an id must solve the ``id_bits`` puzzle (2^id_bits key generations each on average,
  veil.crypto.idpuzzle) and placement puts one share per family first (protocol/family.py), so
  the k ids must also sit in k distinct address blocks (IPv4 /24s).

How many ids the attacker draws until k of its ids are among the first n is simulated
(``trials`` files, deterministic in ``seed``); prices follow from ``keys_per_second`` (key
generations per second per core: measured here with PyNaCl, docs/specs/dht.md) and the
attacker's ``budget_cpu_hours``. The DHT eclipse of one key (k_dht = 20 ids nearer than every
honest node, to hide a file's provider records) is priced the same way, from its expectation.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any

DHT_K = 20
HONEST_KEYS_PER_SECOND = 44_000  # grind_key (PyNaCl key + two SHA-256) per CPU-second, one core here


@dataclass
class CaptureCost:
    mode: str  # "static list" (every node a candidate) or "dht" (the DHT_K nearest the key)
    ids_median: float  # ids the attacker mints, median over the trials
    ids_mean: float
    keygens: float  # key generations for the median: ids x 2^id_bits
    cpu_hours: float  # at keys_per_second
    subnets: int  # distinct address blocks it needs (1: one machine will do)
    files_in_budget: float  # how many such files the budget captures


@dataclass
class CaptureResult:
    nodes: int
    k: int
    n: int
    id_bits: int
    keys_per_second: float
    budget_cpu_hours: float
    attacker_subnets: int | None
    trials: int
    before: list[CaptureCost]
    after: list[CaptureCost]
    eclipse_before_cpu_hours: float
    eclipse_after_cpu_hours: float
    honest_id_cpu_seconds: float  # what one honest node pays once for its id, on average
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _geometric(rng: random.Random, p: float) -> int:
    """Draws until the first success of probability ``p`` (at least 1)."""
    if p >= 1:
        return 1
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def ids_to_capture(rng: random.Random, nodes: int, n: int, k: int, candidates: int | None) -> int:
    """Ids an attacker draws until k of them are among the first n in placement order."""
    if candidates is None:
        # Every node is a candidate: an attacker id is in the first n once it beats the
        # (n - k + 1)-th best honest score; k such ids capture k shares.
        scores = sorted(rng.random() for _ in range(nodes))
        t = scores[n - k] if n - k < nodes else 1.0
        return sum(_geometric(rng, t) for _ in range(k))
    # DHT: candidates are the `candidates` nodes nearest the key (u1), ranked by rendezvous (u2).
    honest = sorted((rng.random(), rng.random(), False) for _ in range(nodes))[:candidates]
    mine: list[tuple[float, float, bool]] = []
    draws = 0
    while True:
        pool = sorted(honest + mine)[:candidates]
        reach = pool[-1][0] if len(pool) >= candidates else 1.0
        draws += _geometric(rng, reach)  # ids farther than the candidate set are useless
        mine.append((rng.random() * reach, rng.random(), True))
        pool = sorted(honest + mine)[:candidates]
        first = sorted(pool, key=lambda x: x[1])[:n]
        if sum(1 for x in first if x[2]) >= k:
            return draws


def run(
    nodes: int = 1000,
    k: int = 3,
    n: int = 10,
    id_bits: int = 20,
    keys_per_second: float = HONEST_KEYS_PER_SECOND,
    budget_cpu_hours: float = 100.0,
    attacker_subnets: int | None = None,
    trials: int = 21,
    seed: int = 1,
) -> CaptureResult:
    if not 1 <= k <= n <= nodes or trials < 1 or keys_per_second <= 0 or budget_cpu_hours < 0 or id_bits < 0:
        raise ValueError("need 1 <= k <= n <= nodes, trials >= 1, a positive key rate, a budget >= 0, id bits >= 0")
    rng = random.Random(seed)
    modes: list[tuple[str, int | None]] = [("static list", None), ("dht", DHT_K if n <= DHT_K else None)]
    budget_keys = budget_cpu_hours * 3600 * keys_per_second
    before: list[CaptureCost] = []
    after: list[CaptureCost] = []
    for name, cands in modes:
        if name == "dht" and cands is None:
            continue
        draws = [ids_to_capture(rng, nodes, n, k, cands) for _ in range(trials)]
        med = float(statistics.median(draws))
        for out, bits, subnets in ((before, 0, 1), (after, id_bits, k)):
            keygens = med * 2.0**bits
            out.append(CaptureCost(
                mode=name, ids_median=med, ids_mean=statistics.fmean(draws), keygens=keygens,
                cpu_hours=keygens / keys_per_second / 3600, subnets=subnets,
                files_in_budget=budget_keys / keygens,
            ))
    eclipse_ids = DHT_K * (nodes + 1)
    notes = []
    if attacker_subnets is not None and attacker_subnets < k:
        notes.append(f"with {attacker_subnets} address block(s) the attacker gets at most {attacker_subnets} "
                     f"share(s) of a file after the change (one per family), never k = {k}")
        for c in after:
            c.files_in_budget = 0.0
    return CaptureResult(
        nodes=nodes, k=k, n=n, id_bits=id_bits, keys_per_second=keys_per_second, budget_cpu_hours=budget_cpu_hours,
        attacker_subnets=attacker_subnets, trials=trials, before=before, after=after,
        eclipse_before_cpu_hours=eclipse_ids / keys_per_second / 3600,
        eclipse_after_cpu_hours=eclipse_ids * 2.0**id_bits / keys_per_second / 3600,
        honest_id_cpu_seconds=2.0**id_bits / keys_per_second,
        notes=notes,
    )
