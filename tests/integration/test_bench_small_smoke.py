"""Smoke test of `veil bench small`: the real command, a real devnet, a handful of files.

It checks that every phase ran and reported, that the ceilings were measured and that the
idle CPU of every node was sampled; the figures themselves are the benchmark's business."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_small_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "VEIL_HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    p = subprocess.run(
        [sys.executable, "-m", "veil.cli.main", "bench", "small", "--files", "4", "--sizes", "4",
         "--inflight", "4", "--idle-files", "10", "--settle-seconds", "1", "--idle-seconds", "2", "--json"],
        env=env, capture_output=True, timeout=280,
    )
    assert p.returncode == 0, p.stderr.decode()
    r = json.loads(p.stdout)
    assert set(r["phases"]) == {"4KiB/1", "4KiB/4"}
    for ph in r["phases"].values():
        for op in ("put", "get"):
            assert ph[op]["files"] == 4 and ph[op]["files_per_s"] > 0
            assert 0 < ph[op]["p50_ms"] <= ph[op]["p99_ms"]
    assert r["top_up"]["files"] == 2 and r["idle_files"] == 10
    assert r["ceilings"]["rtt_p50_ms"] > 0 and r["ceilings"]["fsyncs_per_s"] > 0
    for window in ("settle_cpu_percent", "idle_cpu_percent"):
        storage = [v for v in r[window].values() if "storage" in v["roles"]]
        assert len(storage) == 10 and all(v["cpu"] >= 0 for v in storage)
    assert not list(tmp_path.glob("veil-bench-small-*"))  # the devnet's data dir is cleaned up
