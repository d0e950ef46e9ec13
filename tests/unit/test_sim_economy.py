"""`veil sim economy`'s storage model (sim/economy.py: storage): with open admission any budget
fills every disk; with ticket admission what is filled is proportional to the stake locked, and
the stake that fills a disk is the same whatever the number of nodes (quota is per node)."""

from __future__ import annotations

from veil.ledger.params import GB, Params
from veil.sim.economy import run, storage

P = Params(chain_id="sim", allowance_stake=10 * 10**9, storage_quota_bytes=10 * GB)
DISK = 1000 * GB


def test_open_admission_fills_every_disk_for_nothing() -> None:
    o = storage(P, 0, 100, DISK, 0.01, admission=False)
    assert o.filled == 1.0 and o.locked == 0 and o.cost == 0


def test_ticket_admission_fills_in_proportion_to_the_stake() -> None:
    a = storage(P, 10 * 10**9, 100, DISK, 0.01, admission=True)  # one allowance stake: one quota
    assert a.bytes_per_node == 10 * GB and a.locked == 10 * 10**9 and a.cost == 10**8
    b = storage(P, 25 * 10**9, 100, DISK, 0.01, admission=True)  # split over accounts or not
    assert b.bytes_per_node == 25 * GB and abs(b.filled - 0.025) < 1e-12
    full = storage(P, 10**15, 100, DISK, 0.0, admission=True)
    assert full.filled == 1.0 and full.locked == full.stake_to_fill == 1000 * 10**9
    assert storage(P, 10**15, 10_000, DISK, 0.0, admission=True).stake_to_fill == full.stake_to_fill


def test_run_reports_both() -> None:
    res = run(10**12, 10**15, 10, 0.01, P, node_disk=DISK)
    assert res["storage_open"]["filled"] == 1.0 and res["storage_ticket"]["bytes_per_node"] == 1000 * GB
