"""The attack models of `veil sim`: colluders at ground positions in `sim dht --collude`, checked
against S/Kademlia's curve, and the attacker's price in `sim durability --attacker-cpu-hours`."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from veil.cli.sim import sim
from veil.dht.node import DhtConfig, OpDone
from veil.sim import capture, dht
from veil.testing.dhtnet import GHOST_SHARED_BITS, DhtNetwork, ghost_ids, grinding


def test_analytic_curve() -> None:
    assert dht.analytic(0.0, 5, 3) == 1.0
    assert dht.analytic(0.5, 1, 1) == pytest.approx(0.5)
    assert dht.analytic(0.1, 3, 3) == pytest.approx(1 - (1 - 0.9**3) ** 3)
    assert dht.analytic(0.2, 4, 3) > dht.analytic(0.2, 4, 1) > dht.analytic(0.2, 8, 1)
    with pytest.raises(ValueError):
        dht.analytic(1.5, 3, 3)


def test_ghosts_are_nearer_the_key_than_anyone_and_capture_the_paths_that_meet_them() -> None:
    target = bytes(range(32))
    ghosts = ghost_ids(target, 7, 20)
    assert len({g.key for g in ghosts}) == 20 and ghost_ids(target, 7, 20) == ghosts
    t = int.from_bytes(target, "big")
    assert all((g.key ^ t).bit_length() <= 256 - GHOST_SHARED_BITS for g in ghosts)
    assert {g.key for g in ghost_ids(target, 8, 20)}.isdisjoint({g.key for g in ghosts})
    # A 40-node network, plain Kademlia: a lookup whose first hop is a colluder ends on ghosts.
    net = DhtNetwork(seed=6, config=DhtConfig(paths=1, id_bits=0, refresh_interval=10**9))
    members = [net.add_node()]
    for _ in range(39):
        node = net.add_node()
        via = members[-1].contact
        net.act(node, lambda nd, now, via=via: nd.bootstrap([via], now))
        net.run()
        members.append(node)
    asker = members[0]
    behave, net.ghosts = grinding(20)
    net.behaviours = {c.contact.key: behave for c in members if c is not asker}  # everyone lies but the asker
    done: list[OpDone] = []
    net.listeners.append(lambda _n, ev: done.append(ev))
    net.act(asker, lambda nd, now: nd.find_node(target, now))
    net.run()
    assert done and done[-1].closest and all(c.address.startswith("ghost-") for c in done[-1].closest)


def test_collusion_phase_is_deterministic_and_below_the_hop_curve() -> None:
    a = dht.run(nodes=200, churn=0.0, lookups=60, seed=7, collude=0.2)
    b = dht.run(nodes=200, churn=0.0, lookups=60, seed=7, collude=0.2)
    assert a.collusion is not None and b.collusion is not None
    assert a.collusion.success_rate == b.collusion.success_rate
    assert a.stable.success_rate == 1.0
    # A Kademlia path asks about k nodes, not h: positioned colluders capture far more paths than
    # the curve with h = hops says, and about as many as with h = the nodes a path asks.
    assert a.collusion.success_rate < a.analytic_hops
    assert a.analytic_queried < a.analytic_hops
    assert a.collusion.success_rate < 0.8
    assert abs(a.collusion.success_rate - a.analytic_queried) < 0.3
    assert a.analytic_one_path <= a.analytic_queried


def test_capture_cost_scales_with_the_puzzle_and_needs_k_networks() -> None:
    res = capture.run(nodes=1000, k=3, n=10, id_bits=12, keys_per_second=1000, budget_cpu_hours=1, trials=9, seed=3)
    assert [c.mode for c in res.before] == ["static list", "dht"]
    for b, a in zip(res.before, res.after, strict=True):
        assert a.ids_median == b.ids_median and a.keygens == b.ids_median * 2**12
        assert b.subnets == 1 and a.subnets == 3
        assert a.files_in_budget == pytest.approx(b.files_in_budget / 2**12)
    assert res.honest_id_cpu_seconds == pytest.approx(2**12 / 1000)
    assert res.eclipse_after_cpu_hours == pytest.approx(res.eclipse_before_cpu_hours * 2**12)
    few = capture.run(nodes=1000, k=3, n=10, id_bits=12, attacker_subnets=2, trials=3)
    assert all(c.files_in_budget == 0 for c in few.after) and "at most 2" in few.notes[0]
    with pytest.raises(ValueError):
        capture.run(nodes=5, n=10)


def test_ids_to_capture_matches_its_expectation() -> None:
    rng = random.Random(11)
    draws = [capture.ids_to_capture(rng, 1000, 10, 3, None) for _ in range(300)]
    expected = 3 * 1001 / 8  # k geometric waits, each for an id beating the (n-k+1)-th honest score
    assert abs(sum(draws) / len(draws) - expected) < 0.2 * expected


def test_cli_prints_both_sides() -> None:
    r = CliRunner().invoke(sim, ["dht", "--nodes", "60", "--lookups", "20", "--collude", "0.2"])
    assert r.exit_code == 0, r.output
    assert "colluders at ground positions" in r.output and "analytic 1-(1-(1-c)^h)^d" in r.output
    r = CliRunner().invoke(sim, ["durability", "--nodes", "300", "--files", "100", "--attacker-cpu-hours", "10",
                                 "--id-bits", "16"])
    assert r.exit_code == 0, r.output
    assert "before (free ids, no families)" in r.output and "after (16-bit id puzzle" in r.output
    r = CliRunner().invoke(sim, ["durability", "--nodes", "300", "--files", "100", "--attacker-cpu-hours", "1", "--json"])
    assert json.loads(r.output)["capture"]["id_bits"] == 20
    r = CliRunner().invoke(sim, ["durability", "--attacker-cpu-hours", "1", "--id-bits", "99"])
    assert r.exit_code != 0 and "99" in r.output
