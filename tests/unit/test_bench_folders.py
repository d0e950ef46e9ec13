"""`veil bench folders`: the pure parts (rates, ratios, option checks)."""

from __future__ import annotations

import pytest

from veil.bench.folders import Rate, check_options, ratio
from veil.errors import UsageError


def test_rates_and_ratio() -> None:
    r = Rate(200, 200 * 65536, 2.0)
    assert r.files_per_s == 100 and r.mb_per_s == pytest.approx(6.5536)
    assert ratio(Rate(20, 10_000_000, 2.0), Rate(1, 10_000_000, 1.0)) == pytest.approx(0.5)
    assert ratio(r, Rate(1, 1, 0.0)) == 0.0 and Rate(1, 1, 0.0).files_per_s == 0.0


def test_options_are_checked() -> None:
    check_options(200, 64, 250, 3, 10, 10)
    for bad in ((0, 64, 250, 0, 10, 10), (-1, 64, 250, 1, 10, 10), (1, 0, 250, 1, 10, 10),
                (1, 64, 0, 1, 10, 10), (1, 64, 250, 1, 2000, 10), (1, 64, 250, 1, 10, 0)):
        with pytest.raises(UsageError):
            check_options(*bad)
