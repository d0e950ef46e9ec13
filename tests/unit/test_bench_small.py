"""The pure parts of `veil bench small`: percentiles, summaries, ratios, /proc parsing, options."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from veil.bench.small import (
    check_options,
    cpu_percent,
    parse_proc_stat,
    parse_sizes,
    percentile,
    ratios,
    small_cmd,
    summarize,
)
from veil.errors import UsageError


def test_percentile_interpolates_between_ranks() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 0) == 1.0
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 100) == 5.0
    assert percentile(xs, 25) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([7.0], 99) == 7.0
    assert percentile(list(map(float, range(101))), 99) == pytest.approx(99.0)


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_and_ratios() -> None:
    s = summarize([0.010, 0.020, 0.030, 0.040], wall_s=0.5)
    assert s.files == 4 and s.files_per_s == 8.0
    assert s.p50_ms == pytest.approx(25.0)
    assert s.p99_ms == pytest.approx(39.7)
    r = ratios(s, rtt_ms=0.5, fsyncs_per_s=200.0)  # one fsync = 5 ms
    assert r["p50_in_round_trips"] == pytest.approx(50.0)
    assert r["p50_in_fsyncs"] == pytest.approx(5.0)
    assert r["files_per_s_over_fsyncs_per_s"] == pytest.approx(0.04)
    assert summarize([1.0], 0.0).files_per_s == 0.0


def test_parse_sizes() -> None:
    assert parse_sizes("64,4") == [65536, 4096]
    assert parse_sizes(" 64KiB , 4k ") == [65536, 4096]
    for bad in ("", "0", "64,x", "2048", "-4", "4,4"):
        with pytest.raises(UsageError):
            parse_sizes(bad)


def test_proc_stat_and_cpu_percent() -> None:
    # The command name may contain spaces and parentheses; utime and stime are fields 14 and 15.
    line = "1234 (veil (node) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 777 0 0"
    assert parse_proc_stat(line) == 300
    assert cpu_percent(300, 360, seconds=60.0, clk_tck=100) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cpu_percent(0, 1, 0.0, 100)


def test_options_checked() -> None:
    check_options(20, 16, 0, 2.0, 3, 10, 10)
    for args in ((0, 16, 0, 2.0, 3, 10, 10), (20, 0, 0, 2.0, 3, 10, 10), (20, 16, -1, 2.0, 3, 10, 10),
                 (20, 16, 0, 0.0, 3, 10, 10), (20, 16, 0, 2.0, 11, 10, 10)):
        with pytest.raises(UsageError):
            check_options(*args)


def test_cli_rejects_bad_arguments_before_starting_anything() -> None:
    r = CliRunner().invoke(small_cmd, ["--sizes", "64,abc"])
    assert r.exit_code != 0 and isinstance(r.exception, UsageError)
    r = CliRunner().invoke(small_cmd, ["--discovery", "carrier-pigeon"])
    assert r.exit_code == 2 and "carrier-pigeon" in r.output


def test_cli_rejects_a_negative_settle_time() -> None:
    r = CliRunner().invoke(small_cmd, ["--settle-seconds", "-1"])
    assert r.exit_code != 0 and isinstance(r.exception, UsageError)
