"""One share per family where there is a choice: the spread order, the network's candidate
filter (id puzzle) and families, and upload and repair over the in-memory grid."""

from __future__ import annotations

import dataclasses
import io
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.client.check import check
from veil.client.network import network_from_json
from veil.client.repair import next_target, repair
from veil.client.upload import upload
from veil.crypto.idpuzzle import DEFAULT_ID_BITS, grind_key, valid_id
from veil.crypto.sign import SigningKey, node_id
from veil.errors import UsageError
from veil.protocol.family import families, spread
from veil.protocol.nodeinfo import NodeInfo
from veil.testing.grid import Grid


def node(i: int, host: str = "127.0.0.1", operator: str = "") -> NodeInfo:
    return NodeInfo(host, 1000 + i, bytes([i]) * 32, f"n{i}", operator=operator)


def test_families_come_from_the_operator_label_and_the_address_block() -> None:
    assert families(node(1)) == frozenset()  # loopback, no label: a family of its own
    assert families(node(1, "93.184.216.7", "acme")) == {"op:acme", "net:93.184.216.0/24"}
    assert families(node(1, "93.184.216.7")) & families(node(2, "93.184.216.200"))


def test_spread_puts_one_node_per_family_first_and_keeps_order_otherwise() -> None:
    order = [node(1, operator="a"), node(2, operator="a"), node(3, operator="b"), node(4, "93.184.216.1"),
             node(5, "93.184.216.2", "c"), node(6)]
    assert [n.port - 1000 for n in spread(order)] == [1, 3, 4, 6, 2, 5]
    plain = [node(i) for i in range(1, 8)]
    assert spread(plain) == plain  # no labels (a devnet): exactly the rendezvous order
    assert [n.port - 1000 for n in spread(order, taken={"op:b"})] == [1, 4, 6, 2, 3, 5]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_spread_is_a_permutation_whose_head_has_disjoint_families(labels: list[tuple[int, int]]) -> None:
    order = [node(i, f"93.184.{b}.1", f"op{a}") for i, (a, b) in enumerate(labels)]
    got = spread(order)
    assert sorted(n.port for n in got) == sorted(n.port for n in order)
    head: list[NodeInfo] = []
    for n in got:
        if any(families(n) & families(h) for h in head):
            break
        head.append(n)
    # Every node after the head shares a family with someone in it: nobody fresh was skipped.
    assert all(any(families(n) & families(h) for h in head) for n in got[len(head):])


def test_repair_targets_prefer_a_family_that_holds_no_share() -> None:
    cands = [node(1, operator="a"), node(2, operator="a"), node(3, operator="b")]
    held = {bytes([9]) * 32: {0}}
    assert next_target(cands, held, 1, set(), used={"op:a"}) == cands[2]
    assert next_target(cands, held, 1, set(), used={"op:a", "op:b"}) == cands[0]  # no choice left


def test_the_network_drops_candidates_whose_ids_skip_its_puzzle_and_spreads_the_rest() -> None:
    rng = random.Random(5)
    good = [grind_key(6, lambda: SigningKey(rng.randbytes(32)))[0] for _ in range(4)]
    bad = [SigningKey(rng.randbytes(32)) for _ in range(12)]
    bad = [k for k in bad if not valid_id(node_id(k.public_key), 6)][:4]
    entries = [{"host": "127.0.0.1", "port": 2000 + i, "node_id": node_id(k.public_key).hex(),
                "operator": "same" if i < 2 else f"op{i}"} for i, k in enumerate(good + bad)]
    net = network_from_json({"nodes": entries, "id_bits": 6})
    assert net.id_bits == 6 and network_from_json(net.to_json()).id_bits == 6
    si = bytes(16)
    got = net.storage_nodes_for(si)
    assert {n.node_id for n in got} == {node_id(k.public_key) for k in good}
    assert [n.operator for n in got[:3]].count("same") == 1
    # A static list without id_bits is taken as its author wrote it; a DHT network gets the default.
    assert len(network_from_json({"nodes": entries}).storage_nodes_for(si)) == 8
    assert network_from_json({"bootstrap": ["127.0.0.1:1"]}).id_bits == DEFAULT_ID_BITS
    for wrong in (-1, 41, "8", True):
        with pytest.raises(UsageError, match="malformed"):
            network_from_json({"nodes": entries, "id_bits": wrong})


def test_upload_and_repair_put_one_share_per_operator(tmp_path: Path) -> None:
    grid = Grid(tmp_path, 20)
    try:
        for i, gn in enumerate(grid.nodes):
            gn.info = dataclasses.replace(gn.info, operator=f"op{i % 10}")
        net = grid.network()
        data = random.Random(1).randbytes(200_000)
        res = upload(net, io.BytesIO(data), len(data), "f.bin", segment_size=64 * 1024)
        ops = Counter(n.operator for n in res.placement.values())
        assert len(ops) == 10 and set(ops.values()) == {1}
        vcap = res.cap.verify_cap()
        lost = [grid.node(n) for n in list(res.placement.values())[:2]]
        for gn in lost:
            grid.wipe(gn)
        fixed = repair(net, vcap)
        assert len(fixed.placed) == 2
        holders = Counter(s.node.operator for s in check(net, vcap).shares if s.ok)
        assert sum(holders.values()) == 10 and set(holders.values()) == {1}
    finally:
        grid.close()


def test_the_repairers_candidates_skip_ids_without_the_puzzle(tmp_path: Path) -> None:
    import json

    from veil.net.server import Router
    from veil.node.context import NodeConfig, NodeContext
    from veil.node.repair_role import RepairerRole

    rng = random.Random(8)
    good = [grind_key(6, lambda: SigningKey(rng.randbytes(32)))[0] for _ in range(3)]
    bad = [k for k in (SigningKey(rng.randbytes(32)) for _ in range(10)) if not valid_id(node_id(k.public_key), 6)][:3]
    path = tmp_path / "network.json"
    path.write_text(json.dumps({"id_bits": 6, "nodes": [
        {"host": "127.0.0.1", "port": 3000 + i, "node_id": node_id(k.public_key).hex()} for i, k in enumerate(good + bad)
    ]}))
    me = grind_key(6, lambda: SigningKey(rng.randbytes(32)))[0]
    ctx = NodeContext(tmp_path, me, "127.0.0.1", 1, config=NodeConfig(network=path, id_bits=6))
    role = RepairerRole()
    role.attach(ctx, Router())
    got = {n.node_id for n in role._candidates(bytes(16))}
    assert got == {node_id(k.public_key) for k in [*good, me]}


def test_a_share_whose_node_fails_goes_to_a_family_without_one(tmp_path: Path) -> None:
    grid = Grid(tmp_path, 20)
    try:
        for i, gn in enumerate(grid.nodes):
            gn.info = dataclasses.replace(gn.info, operator=f"op{i % 10}")
            gn.dead = i in (0, 3, 7)  # one node of op0, op3 and op7 is down: their partners must take over
        data = random.Random(2).randbytes(50_000)
        res = upload(grid.network(), io.BytesIO(data), len(data), "g.bin")
        ops = Counter(n.operator for n in res.placement.values())
        assert len(ops) == 10 and set(ops.values()) == {1}
    finally:
        grid.close()


def test_declared_operator_labels_are_used_unless_the_network_file_pins_one() -> None:
    """Issue 18: a node's label comes from its signed node record (`veil node run --operator`),
    learnt and verified by the DHT driver; a network file that names the node's operator pins it."""
    from veil.client.network import Network
    from veil.dht.config import DhtConfig
    from veil.dht.records import sign_node_record
    from veil.errors import IntegrityError
    from veil.net.dht_driver import DhtDriver

    a, b, c = (SigningKey(bytes([i]) * 32) for i in (41, 42, 43))
    drv = DhtDriver(SigningKey.generate(), "127.0.0.1:1", config=DhtConfig(id_bits=0), announce=False)
    try:
        now = int(drv.clock())
        for k, label in ((a, "acme"), (b, "acme")):
            assert drv.learn_node_record(sign_node_record(k, "10.0.0.1:1", now + 600, label).raw,
                                         node_id(k.public_key)) == label  # fmt: skip
        with pytest.raises(IntegrityError):  # a record is believed only for the node it names
            drv.learn_node_record(sign_node_record(c, "10.0.0.1:1", now + 600, "acme").raw, node_id(a.public_key))
        pinned = NodeInfo("127.0.0.1", 2, node_id(b.public_key), "b", operator="b-corp")
        net = Network(nodes=[pinned], dht=drv)
        plain = [NodeInfo("127.0.0.1", i, node_id(k.public_key), str(i)) for i, k in enumerate((a, b, c))]
        got = {n.name: n.operator for n in net.labelled(plain)}
        assert got == {"0": "acme", "1": "b-corp", "2": ""}
        # Two nodes declaring one operator are one family: spread puts one of them first.
        # (pinned apart above; declared alone, a and b are one family: spread puts c before b)
        order = spread(Network(nodes=[], dht=drv).labelled(plain))
        assert [n.name for n in order] == ["0", "2", "1"]
        assert [n.name for n in spread(net.labelled(plain))] == ["0", "1", "2"]
    finally:
        drv.stop()
