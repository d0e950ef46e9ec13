"""Churn on a real devnet: nodes joined through one bootstrap node, files uploaded by clients
that know only bootstrap addresses, 30% of the nodes killed (SIGKILL, data wiped) and replaced
by new nodes; the nodes' repairers bring every file back to n healthy shares by themselves,
and every file still downloads byte-identical."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from churn_helpers import ChurnDevnet, assert_restored, wait_for

from veil.net.client import PeerClient

pytestmark = pytest.mark.integration

NODES = 10
FILES = 6


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChurnDevnet]:
    d = ChurnDevnet(tmp_path_factory.mktemp("churn-home"))
    d.up(NODES, ["--repair-interval", "1", "--repair-threshold", "n"])
    try:
        yield d
    finally:
        d.devnet.down()


def test_nodes_joined_through_one_bootstrap_node(net: ChurnDevnet) -> None:
    specs = [s for s in net.devnet.specs() if "dht" in s.roles]
    first = f"127.0.0.1:{specs[0].port}"
    assert "--bootstrap" not in specs[0].args
    assert all(s.args[s.args.index("--bootstrap") + 1] == first for s in specs[1:])
    ids = net.devnet.known_ids()
    for s in specs:
        st = PeerClient("127.0.0.1", s.port, ids[s.name]).call("GET", "/v1/node")["roles"]["dht"]
        assert st["joined"] and st["contacts"] >= 2
    assert net.network().storage_nodes() == []  # the client's file names no storage node


def test_automatic_repair_after_30_percent_churn(net: ChurnDevnet, tmp_path: Path) -> None:
    files = []
    for i in range(FILES):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(200_000 + 150_000 * i))
        files.append((p, net.put(p)))
    for _, caps in files:
        assert net.check(caps["verify cap"]).healthy

    # Kill 30% of the storage nodes, the bootstrap node among them, and add as many new ones.
    storage = [s.name for s in net.devnet.specs() if "storage" in s.roles]
    victims = storage[: len(storage) * 3 // 10]
    for v in victims:
        net.veil("devnet", "kill", v, "--wipe")
    net.veil("devnet", "add", "--nodes", str(len(victims)), "--repair-interval", "1", "--repair-threshold", "n")

    def all_healthy() -> bool:
        return all(net.check(c["verify cap"]).healthy for _, c in files)

    wait_for(all_healthy, timeout=120, what="automatic repair of every file")
    assert_restored(net, files, tmp_path, net.check)

    ids = net.devnet.known_ids()
    repaired = 0
    for s in net.devnet.specs():
        if "repairer" in s.roles and net.devnet.pid_of(s) is not None:
            st = PeerClient("127.0.0.1", s.port, ids[s.name]).call("GET", "/v1/node")["roles"]["repairer"]
            repaired += st["repaired_shares"]
    assert repaired > 0
