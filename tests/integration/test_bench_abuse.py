"""`veil bench abuse` runs end to end against a real node process and reports sane fields.

A smoke run of a few seconds: it checks the shape and the invariants of the report (the
normal client read verified bytes in both phases, every hostile kind ran and got a known
kind of answer, the node's samples are there and the node survived), never its timings.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from veil.bench.hostile import KINDS

pytestmark = pytest.mark.integration

OUTCOME = re.compile(r"^(\d{3}(\+\d{3})*|(put|session)_\d{3}|ended_\w+|closed|reset|timeout|tls_error|tls_alert"
                     r"|data|open_at_end|open_1s)$")


def test_bench_abuse_smoke() -> None:
    out = subprocess.run([sys.executable, "-m", "veil.cli.main", "bench", "abuse", "--seconds", "3", "--json"],
                         capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["seconds"] == 3
    client = r["client"]
    for phase in ("idle", "attack"):
        c = client[phase]
        assert c["bytes"] > 0 and c["range_reads"] > 0 and c["small_reads"] > 0, (phase, c)
        assert c["bytes"] % (1 << 20) == 0  # whole verified 1 MiB blocks only
        assert 0 < c["small_p50_ms"] <= c["small_p99_ms"], (phase, c)
        assert "IntegrityError" not in c["errors"], (phase, c["errors"])
    assert client["ratio"] == round(client["attack"]["mb_s"] / client["idle"]["mb_s"], 3)
    node = r["node"]
    assert node["alive_after"] and node["answers_after"]
    for phase in ("idle", "attack", "after"):
        p = node[phase]
        assert p["rss_peak_mib"] > 0 and p["open_files_peak"] >= 3 and p["threads_peak"] >= 1, (phase, p)
        assert node["vm_hwm_mib"] >= p["rss_peak_mib"]
    assert set(r["hostile"]) == set(KINDS)
    for kind, outcomes in r["hostile"].items():
        assert sum(outcomes.values()) > 0, kind
        assert all(OUTCOME.match(o) for o in outcomes), (kind, outcomes)
    # The flood reached the node's upload handler: it was answered with statuses, not only closes.
    assert any(o.isdigit() for o in r["hostile"]["upload_flood"]), r["hostile"]["upload_flood"]
