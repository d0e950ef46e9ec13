"""`veil sim ledger` and `veil sim shards` compute their figures (small sizes here)."""

from __future__ import annotations

from pathlib import Path

from veil.ledger.store import LedgerStore
from veil.sim import ledger_state, shards


def test_sim_ledger_builds_a_real_store_and_measures_it(tmp_path: Path) -> None:
    res = ledger_state.run(5000, tmp_path, lookups=500, transfers=300, block=100)
    store = LedgerStore(tmp_path / "state.db")
    try:
        # The file is a real ledger store: every account written plus the simulated senders and the
        # new accounts the transfers created.
        assert store.count_accounts() >= 5000 + 200
        assert store.head()[0] == 3  # 300 transfers in blocks of 100
    finally:
        store.close()
    assert res.bytes_on_disk > 5000 * 32 and res.lookup_per_s > 0 and res.apply_per_s > 0


def test_sim_shards_throughput_grows_with_shards_and_money_is_conserved() -> None:
    res = shards.run(1000.0, [1, 4, 16], [0.0, 0.5], blocks=40, scale=50)
    by = {(p.shards, p.cross): p for p in res.points}
    one = by[(1, 0.0)].throughput
    assert abs(one - 1000) < 20
    for s in (4, 16):
        assert abs(by[(s, 0.0)].throughput / (s * one) - 1) < 0.03
        # Each cross-shard transfer is worked twice: the ceiling falls to S / (1 + cross).
        assert abs(by[(s, 0.5)].throughput / (s * one / 1.5) - 1) < 0.05
        assert by[(s, 0.5)].p50_cross_ms > by[(s, 0.5)].p50_local_ms
    assert all(p.conserved for p in res.points)
