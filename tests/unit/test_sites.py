"""The pure parts of sites (client/sites.py): host names, Range headers. The serving itself is
tested on a real devnet through `veil proxy` and chromium (tests/browser/test_sites_proxy.py)."""

from __future__ import annotations

import pytest

from veil.client.sites import parse_range, site_name
from veil.errors import UsageError


@pytest.mark.parametrize(("host", "want"), [
    ("alice.veil", "alice.veil"), ("Alice.VEIL:80", "alice.veil"), ("blog.alice.veil", "blog.alice.veil"),
    ("alice.veil.", "alice.veil"), ("example.com", None), (".veil", None), ("[::1]:80", None), ("", None),
    ("veil", None),
])  # fmt: skip
def test_site_name(host: str, want: str | None) -> None:
    assert site_name(host) == want


@pytest.mark.parametrize(("header", "want"), [
    (None, None), ("bytes=0-9", (0, 10)), ("bytes=10-", (10, 100)), ("bytes=-10", (90, 100)),
    ("bytes=90-500", (90, 100)), ("bytes=0-0", (0, 1)), ("bytes=0-1,5-6", None), ("items=0-1", None),
    ("bytes=-", None), ("bytes=-500", (0, 100)),
])  # fmt: skip
def test_parse_range(header: str | None, want: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == want


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(UsageError):
        parse_range(header, 100)
