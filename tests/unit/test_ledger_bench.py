"""Smoke run of `veil bench ledger` (tiny sizes; the numbers themselves are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_ledger_quick_json() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "veil.cli.main", "bench", "ledger", "--quick", "--accounts", "1000", "--no-http", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert set(r) == {"ceiling", "validator_core", "cheques", "state"}
    assert r["state"]["accounts"] == 1000 and r["validator_core"]["blocks"] >= 1
