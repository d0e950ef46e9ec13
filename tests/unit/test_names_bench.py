"""`veil bench names` runs end to end on a small tree and reports its ratios (not a timing test)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from veil.bench.names import names_cmd


def test_bench_names_reports_rates_against_the_ceiling() -> None:
    r = CliRunner().invoke(names_cmd, ["--names", "300", "--seconds", "0.2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["names"] == 300 and out["resolutions_per_s"] > 0 and out["ed25519_verifies_per_s"] > 0
    assert out["ratio_to_one_verify"] == out["resolutions_per_s"] / out["ed25519_verifies_per_s"]
    assert 5 <= out["mean_proof_hashes"] <= 20  # about log2(300) siblings per proof
