"""The DHT over real TLS on 127.0.0.1: nodes join through one bootstrap node, a provider
record is found from another node and from a client that does not serve, and a real
`veil node run --bootstrap` process joins."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.crypto.idpuzzle import DEVNET_ID_BITS, valid_id
from veil.crypto.sign import SigningKey, node_id
from veil.dht.node import DhtConfig
from veil.net.client import PeerClient
from veil.net.dht_driver import DhtDriver
from veil.node.context import NodeConfig
from veil.node.dht_role import DhtRole
from veil.node.identity import MAGIC
from veil.node.main import Node

pytestmark = pytest.mark.integration


def wait_for(cond: object, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def dht_of(node: Node) -> DhtDriver:
    role = next(r for r in node.roles if isinstance(r, DhtRole))
    assert role.driver is not None
    return role.driver


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Node]]:
    root = tmp_path_factory.mktemp("dht")
    first = Node(root / "n0", "127.0.0.1", 0, ["dht"], NodeConfig(id_bits=DEVNET_ID_BITS))
    first.start()
    boot = f"127.0.0.1:{first.ctx.port}"
    started = [first]
    try:
        for i in range(1, 8):
            n = Node(root / f"n{i}", "127.0.0.1", 0, ["dht"], NodeConfig(bootstrap=(boot,), id_bits=DEVNET_ID_BITS))
            n.start()
            started.append(n)
        for n in started:
            wait_for(lambda n=n: dht_of(n).joined.is_set() and dht_of(n).contacts())
        yield started
    finally:
        for n in started:
            n.stop()


def test_nodes_find_each_other_through_one_bootstrap_node(nodes: list[Node]) -> None:
    last = dht_of(nodes[-1])
    done = last.find_node(nodes[3].ctx.node_id)
    assert nodes[3].ctx.node_id in [c.node_id for c in done.closest]
    rec = last.find_node_record(nodes[2].ctx.node_id)
    assert rec is not None and rec.address == f"127.0.0.1:{nodes[2].ctx.port}"


def test_provider_record_found_by_node_and_by_client(nodes: list[Node]) -> None:
    si = bytes(range(32))
    dht_of(nodes[4]).provide(si, (2, 5))
    want = (nodes[4].ctx.node_id, (2, 5))
    wait_for(lambda: [(p.provider_id, p.shares) for p in dht_of(nodes[1]).find_providers(si, want=1)] == [want])
    client = DhtDriver(SigningKey.generate(), "client:1", config=DhtConfig(id_bits=DEVNET_ID_BITS), announce=False)
    try:
        client.join([f"127.0.0.1:{nodes[0].ctx.port}"])
        recs = client.find_providers(si)
        assert [(p.provider_id, p.shares, p.address) for p in recs] == [(*want, f"127.0.0.1:{nodes[4].ctx.port}")]
    finally:
        client.stop()


def test_a_node_whose_id_skips_the_puzzle_is_never_let_in(nodes: list[Node], tmp_path: Path) -> None:
    """A node running the old rules (id_bits 0) with an id that does not solve the network's
    8-bit puzzle talks to the network over real TLS, and nobody adds it to a table or routes to it."""
    rng = random.Random(18)
    while True:
        key = SigningKey(rng.randbytes(32))
        if not valid_id(node_id(key.public_key), DEVNET_ID_BITS):
            break
    data = tmp_path / "cheat"
    data.mkdir()
    (data / "identity.key").write_bytes(MAGIC + key.seed)
    cheat = Node(data, "127.0.0.1", 0, ["dht"], NodeConfig(bootstrap=(f"127.0.0.1:{nodes[0].ctx.port}",), id_bits=0))
    cheat.start()
    try:
        wait_for(lambda: dht_of(cheat).joined.is_set() and len(dht_of(cheat).contacts()) >= 3)
        refused = sum(int(dht_of(n).status()["refused_puzzle"]) for n in nodes)
        assert all(cheat.ctx.node_id not in [c.node_id for c in dht_of(n).contacts()] for n in nodes)
        found = dht_of(nodes[6]).find_node(cheat.ctx.node_id)
        assert cheat.ctx.node_id not in [c.node_id for c in found.closest] and found.closest
        assert refused > 0 and dht_of(nodes[0]).status()["id_bits"] == DEVNET_ID_BITS
    finally:
        cheat.stop()


def test_node_run_with_bootstrap_joins(nodes: list[Node], tmp_path: Path) -> None:
    data = tmp_path / "proc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(data), "--role", "dht",
         "--bootstrap", f"127.0.0.1:{nodes[0].ctx.port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: (data / "node.json").exists())
        info = json.loads((data / "node.json").read_text())
        peer = PeerClient("127.0.0.1", info["port"], bytes.fromhex(info["node_id"]))

        def joined() -> bool:
            st = peer.call("GET", "/v1/node")["roles"]["dht"]
            return bool(st["joined"] and st["contacts"] > 0)

        wait_for(joined)
        found = dht_of(nodes[5]).find_node(bytes.fromhex(info["node_id"]))
        assert bytes.fromhex(info["node_id"]) in [c.node_id for c in found.closest]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_provide_many_over_tls_and_the_clients_region_memory(nodes: list[Node]) -> None:
    """A batch of provider records (one lookup, one add_providers request per node) is found
    key by key from another node; a client placing files asks the DHT once per region."""
    keys = [bytes([i, 7]) * 16 for i in range(100)]
    dht_of(nodes[5]).provide_many([(k, (i % 10,)) for i, k in enumerate(keys)])
    seeker = dht_of(nodes[2])
    for i, k in enumerate(keys):
        wait_for(lambda k=k, i=i: [(p.provider_id, p.shares) for p in seeker.find_providers(k, want=1)]
                 == [(nodes[5].ctx.node_id, (i % 10,))])  # fmt: skip
    client = DhtDriver(SigningKey.generate(), "client:1", config=DhtConfig(id_bits=DEVNET_ID_BITS), announce=False)
    try:
        client.join([f"127.0.0.1:{nodes[0].ctx.port}"])
        first = client.closest_nodes(keys[0])
        assert {c.node_id for c in first} == {n.ctx.node_id for n in nodes}  # 8 nodes: all of them
        misses = client.node.regions.misses
        for k in keys[1:20]:
            assert {c.node_id for c in client.closest_nodes(k)} == {c.node_id for c in first}
        assert client.node.regions.misses == misses  # no lookup: the region is fresh
    finally:
        client.stop()
