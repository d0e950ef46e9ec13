"""Smoke run of `veil bench ledger` (tiny sizes, real validator processes; the numbers
themselves are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_ledger_quick_json() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "veil.cli.main", "bench", "ledger", "--quick", "--validators", "3", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert set(r) == {"ceiling", "machine", "single", "cluster", "cheques", "state"}
    assert r["machine"]["blocks"] >= 1 and r["cluster"]["tx_per_s"] > 0 and r["cluster"]["failover_s"] > 0
