"""Smoke tests of the simulations and `veil sim` (small sizes; the real runs are in docs/specs/dht.md)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from veil.cli.sim import sim
from veil.sim import dht, durability


def test_dht_sim_300_nodes_with_churn() -> None:
    res = dht.run(nodes=300, churn=0.2, lookups=200, seed=2)
    assert res.stable.lookups == 200 and res.stable.success_rate >= 0.995
    assert res.stable.hops_median <= 4
    assert res.churn is not None and res.churn.lookups == 200 and res.churn.nodes_replaced == 60
    assert res.churn.success_rate >= 0.98
    assert res.churn.timeouts_per_lookup > 0  # dead nodes were really met


def test_dht_sim_over_the_wire_encoding() -> None:
    res = dht.run(nodes=60, churn=0.0, lookups=30, seed=3, wire=True)
    assert res.churn is None and res.stable.success_rate == 1.0


def test_durability_repair_beats_no_repair() -> None:
    res = durability.run(nodes=200, files=2000, years=1, failure_rate=0.6, seed=4)
    assert res.node_failures > 0
    assert res.without_repair.files_lost > 0
    assert res.with_repair.files_lost < res.without_repair.files_lost
    assert res.with_repair.repairs > 0 and res.with_repair.shares_recreated >= res.with_repair.repairs
    quiet = durability.run(nodes=50, files=100, failure_rate=0.0)
    assert quiet.node_failures == 0 and quiet.without_repair.files_lost == 0


def test_cli() -> None:
    r = CliRunner().invoke(sim, ["dht", "--nodes", "50", "--lookups", "20", "--churn", "0.1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["nodes"] == 50 and out["stable"]["lookups"] == 20 and out["churn"]["nodes_replaced"] == 5
    r = CliRunner().invoke(sim, ["dht", "--nodes", "40", "--lookups", "10"])
    assert r.exit_code == 0 and "success" in r.output
    r = CliRunner().invoke(sim, ["durability", "--nodes", "100", "--files", "500", "--failure-rate", "0.5"])
    assert r.exit_code == 0 and "without repair" in r.output, r.output
    r = CliRunner().invoke(sim, ["durability", "--nodes", "5", "-n", "10"])
    assert r.exit_code != 0


def test_dht_sim_attack_phase() -> None:
    res = dht.run(nodes=300, churn=0.0, lookups=100, seed=5, liars=0.3)
    assert res.attack is not None and res.attack.lookups == 100
    assert res.attack.success_rate >= 0.9
