"""`veil sim dht`: lookups over N simulated nodes running the real routing code.

The network is built the way real nodes join: each new node contacts one node already in
the network and looks up its own id (``DhtNode.bootstrap``), which is also how the nodes it
meets learn about it (after a verification ping). Joins run in concurrent batches on the
virtual clock. Then ``lookups`` lookups of random keys from random nodes are measured against
the brute-force truth: a lookup succeeds when the nearest live node it reports is the true
nearest live node to the key. The churn phase repeats the measurement while ``churn`` x N
nodes are killed without warning and as many new nodes join, spread over the phase. The
optional attack phase turns a fraction of the nodes into liars (veil.testing.dhtnet.colluding),
who answer from their random positions; the optional collusion phase instead gives a fraction
``collude`` of the nodes S/Kademlia's positioned adversary (veil.testing.dhtnet.grinding): every
colluder answers with ids ground next to the target, so any path that asks one is captured. Its
success rate is printed next to the analytic curve ``1 - (1 - (1 - c)^h)^d`` (``analytic``).
"""

from __future__ import annotations

import heapq
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from veil.dht.node import DhtConfig, DhtNode, OpDone
from veil.testing.dhtnet import Behaviour, DhtNetwork, colluding, grinding

Progress = Callable[[str, int, int], None]  # phase, done, total


@dataclass
class PhaseStats:
    lookups: int
    success_rate: float  # nearest live node found
    recall_k: float  # mean fraction of the true k nearest live nodes found
    hops_median: float
    hops_p99: float
    messages_mean: float
    messages_median: float
    timeouts_per_lookup: float
    latency_median_s: float  # virtual seconds
    nodes_replaced: int = 0


@dataclass
class DhtSimResult:
    nodes: int
    seed: int
    k: int
    alpha: int
    paths: int
    join_wall_s: float
    join_messages_per_node: float
    stable: PhaseStats
    churn: PhaseStats | None
    churn_fraction: float
    attack: PhaseStats | None
    liar_fraction: float
    wall_s: float
    collusion: PhaseStats | None = None
    collude_fraction: float = 0.0
    # S/Kademlia's curve for the collusion phase, with h = the stable phase's median hops, and
    # with h = the nodes each path queried (stable messages / paths): a path is one node per hop
    # in the analysis, while a Kademlia path asks about k nodes, any of which can capture it.
    analytic_hops: float = 0.0
    analytic_queried: float = 0.0
    # ... and with d = 1: paths are disjoint, so the nearest honest node sits on one path only,
    # and that path must stay uncaptured to the end (a captured path's k nearest are ghosts).
    analytic_one_path: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(xs: list[int], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    i = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return float(s[i])


class _Measure:
    """Starts measured lookups and scores each against the live nodes when it finishes."""

    def __init__(self, net: DhtNetwork, k: int, members: dict[int, DhtNode], any_path: bool = False) -> None:
        self.net = net
        self.members = members
        self.any_path = any_path
        self.k = k
        self.pending: dict[tuple[int, int], float] = {}
        self.ok = 0
        self.recall: list[float] = []
        self.hops: list[int] = []
        self.msgs: list[int] = []
        self.fails: list[int] = []
        self.latency: list[float] = []
        net.listeners.append(self._done)

    def start(self, node: DhtNode, target: bytes) -> None:
        def start(n: DhtNode, now: float) -> None:
            # Registered before the network sees the node's output: a lookup can end at once.
            self.pending[(n.contact.key, n.find_node(target, now))] = now

        self.net.act(node, start)

    def _done(self, node: DhtNode, ev: OpDone) -> None:
        started = self.pending.pop((node.contact.key, ev.op_id), None)
        if started is None:
            return
        t = int.from_bytes(ev.target, "big")
        own = node.contact.key
        # The truth is over nodes that are alive and have finished joining: a node still
        # joining is not yet expected to be found.
        alive = self.members
        truth = heapq.nsmallest(self.k, (x for x in alive if x != own), key=lambda x: x ^ t)
        found = [c.key for c in ev.closest if c.key in alive]
        if self.any_path:
            # Under attack: did any path reach the nearest honest node?
            if truth and any(c.key == truth[0] for path in ev.paths for c in path):
                self.ok += 1
        elif found and truth and found[0] == truth[0]:
            self.ok += 1
        self.recall.append(len(set(found) & set(truth)) / max(1, len(truth)))
        self.hops.append(ev.hops)
        self.msgs.append(ev.messages)
        self.fails.append(ev.failures)
        self.latency.append(ev.finished - started)

    def stats(self, replaced: int = 0) -> PhaseStats:
        n = len(self.hops)
        return PhaseStats(
            lookups=n,
            success_rate=self.ok / n if n else 0.0,
            recall_k=statistics.fmean(self.recall) if n else 0.0,
            hops_median=statistics.median(self.hops) if n else 0.0,
            hops_p99=_percentile(self.hops, 0.99),
            messages_mean=statistics.fmean(self.msgs) if n else 0.0,
            messages_median=statistics.median(self.msgs) if n else 0.0,
            timeouts_per_lookup=statistics.fmean(self.fails) if n else 0.0,
            latency_median_s=statistics.median(self.latency) if n else 0.0,
            nodes_replaced=replaced,
        )

    def close(self) -> None:
        self.net.listeners.remove(self._done)


def _join(net: DhtNetwork, rng: random.Random, members: list[DhtNode]) -> DhtNode:
    node = net.add_node()
    via = members[rng.randrange(len(members))].contact
    net.act(node, lambda n, now: n.bootstrap([via], now))
    return node


def run(
    nodes: int = 10_000,
    churn: float = 0.2,
    lookups: int = 1000,
    seed: int = 1,
    paths: int = 3,
    batch: int = 50,
    wire: bool = False,
    liars: float = 0.0,
    progress: Progress | None = None,
    collude: float = 0.0,
) -> DhtSimResult:
    """Join ``nodes``, measure ``lookups`` lookups, then the same under ``churn``, then (when
    ``liars`` > 0) with that fraction of nodes answering only with each other."""
    if nodes < 2 or lookups < 1 or not 0 <= churn < 1 or not 0 <= liars < 1 or not 0 <= collude < 1:
        raise ValueError("need at least 2 nodes, 1 lookup, 0 <= churn < 1, 0 <= liars < 1 and 0 <= collude < 1")
    t0 = time.monotonic()
    cfg = DhtConfig(paths=paths, id_bits=0)  # every id taken as puzzle-valid: what positions cost is priced apart
    net = DhtNetwork(seed=seed, config=cfg, wire=wire)
    rng = random.Random(seed ^ 0x5EED)
    report = progress or (lambda phase, done, total: None)

    # Join, in concurrent batches; a batch's nodes become bootstrap choices once it finished.
    members = [net.add_node()]
    while len(members) < nodes:
        wave = [_join(net, rng, members) for _ in range(min(batch, nodes - len(members)))]
        net.run()
        members.extend(wave)
        report("join", len(members), nodes)
    joined = {n.contact.key: n for n in members}
    join_wall = time.monotonic() - t0
    join_msgs = net.messages / nodes

    def measure(n_lookups: int, replace_total: int) -> PhaseStats:
        m = _Measure(net, cfg.k, joined)
        started = 0
        replaced = 0
        rounds = max(1, -(-n_lookups // batch))
        phase = "churn" if replace_total else "lookups"
        for r in range(rounds):
            # Churn: kill nodes without warning and let newcomers join, spread over the phase.
            due = replace_total * (r + 1) // rounds - replaced
            for _ in range(due):
                victim = members.pop(rng.randrange(len(members)))
                del joined[victim.contact.key]
                net.kill(victim)
            newcomers = [_join(net, rng, members) for _ in range(due)]
            replaced += due
            for _ in range(min(batch, n_lookups - started)):
                src = members[rng.randrange(len(members))]
                m.start(src, rng.randbytes(32))
                started += 1
            net.run()
            for n in newcomers:
                members.append(n)
                joined[n.contact.key] = n
            report(phase, started, n_lookups)
        m.close()
        return m.stats(replaced)

    stable = measure(lookups, 0)
    churned = measure(lookups, round(churn * nodes)) if churn > 0 else None

    def under_attack(fraction: float, make: Callable[[list[DhtNode]], Behaviour], phase: str) -> PhaseStats:
        # Success is the nearest honest node showing up among some path's k nearest.
        bad = rng.sample(members, round(fraction * len(members)))
        behave = make(bad)
        for n in bad:
            net.behaviours[n.contact.key] = behave
        bad_keys = {n.contact.key for n in bad}
        honest = [n for n in members if n.contact.key not in bad_keys]
        m = _Measure(net, cfg.k, {n.contact.key: n for n in honest}, any_path=True)
        started = 0
        while started < lookups:
            for _ in range(min(batch, lookups - started)):
                m.start(honest[rng.randrange(len(honest))], rng.randbytes(32))
                started += 1
            net.run()
            report(phase, started, lookups)
        m.close()
        for n in bad:
            net.behaviours.pop(n.contact.key, None)
        return m.stats()

    # Liars answer every lookup with the colluders nearest the target, never with an honest node.
    attack = under_attack(liars, lambda bad: colluding([n.contact for n in bad], cfg.k), "liars") if liars > 0 else None
    collusion = None
    if collude > 0:
        behave, net.ghosts = grinding(cfg.k)
        collusion = under_attack(collude, lambda bad: behave, "collude")
        net.ghosts = None
    return DhtSimResult(
        nodes=nodes,
        seed=seed,
        k=cfg.k,
        alpha=cfg.alpha,
        paths=cfg.paths,
        join_wall_s=round(join_wall, 2),
        join_messages_per_node=round(join_msgs, 1),
        stable=stable,
        churn=churned,
        churn_fraction=churn,
        attack=attack,
        liar_fraction=liars,
        wall_s=round(time.monotonic() - t0, 2),
        collusion=collusion,
        collude_fraction=collude,
        analytic_hops=analytic(collude, stable.hops_median, cfg.paths) if collude else 0.0,
        analytic_queried=analytic(collude, stable.messages_mean / cfg.paths, cfg.paths) if collude else 0.0,
        analytic_one_path=analytic(collude, stable.messages_mean / cfg.paths, 1) if collude else 0.0,
    )


def analytic(c: float, h: float, d: int) -> float:
    """S/Kademlia's lookup success with a fraction ``c`` of colluders, ``h`` hops per path and
    ``d`` disjoint paths: a path succeeds if every hop is honest, the lookup if any path does."""
    if not 0 <= c <= 1 or h < 0 or d < 1:
        raise ValueError("need 0 <= c <= 1, h >= 0 and d >= 1")
    return float(1 - (1 - (1 - c) ** h) ** d)
