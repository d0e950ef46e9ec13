"""Real devnets: node processes over real TLS on 127.0.0.1, each test module its own network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devnet_helpers import RunningDevnet


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("veil-home")
    d = RunningDevnet(home / "devnet", home)
    d.up(10)
    try:
        yield d
    finally:
        d.devnet.down()
