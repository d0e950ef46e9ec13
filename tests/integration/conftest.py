"""Real devnets: node processes over real TLS on 127.0.0.1, each test module its own network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from devnet_helpers import RunningDevnet

from veil.crypto.idpuzzle import DEVNET_ID_BITS

# Nodes these tests start by hand (`veil node run` without --id-bits) grind a devnet-sized id
# puzzle, not the network default's 2^20 keys each (docs/specs/dht.md, "Ids cost work").
os.environ.setdefault("VEIL_ID_BITS", str(DEVNET_ID_BITS))


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("veil-home")
    d = RunningDevnet(home / "devnet", home)
    d.up(10)
    try:
        yield d
    finally:
        d.devnet.down()
