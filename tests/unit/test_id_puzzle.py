"""The node-id puzzle (S/Kademlia static puzzle) and every place the DHT enforces it: identity
creation, routing-table inserts, per-network limits, records, lookups and a simulated network."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from veil.crypto.idpuzzle import DEVNET_ID_BITS, grind_key, puzzle_bits, require_valid_id, valid_id
from veil.crypto.sign import SigningKey, node_id
from veil.dht.ids import Contact
from veil.dht.lookup import Lookup
from veil.dht.messages import AddProvider, FindNode, Refused, StoreNode
from veil.dht.node import DhtConfig, DhtNode, OpDone
from veil.dht.records import (
    decode_node_record,
    decode_provider_record,
    sign_node_record,
    sign_provider_record,
)
from veil.dht.routing import RoutingTable
from veil.dht.subnet import subnet_of
from veil.errors import IntegrityError, UsageError
from veil.node.identity import load_or_create
from veil.testing.dhtnet import DhtNetwork

BITS = 6  # cheap to grind in a test (~64 keys), and still refuses ~98% of random ids
NOW = 1_700_000_000.0


def keys(bits: int, count: int, seed: int) -> list[SigningKey]:
    rng = random.Random(seed)
    return [grind_key(bits, lambda: SigningKey(rng.randbytes(32)))[0] for _ in range(count)]


def bad_keys(bits: int, count: int, seed: int) -> list[SigningKey]:
    rng = random.Random(seed)
    out: list[SigningKey] = []
    while len(out) < count:
        k = SigningKey(rng.randbytes(32))
        if not valid_id(node_id(k.public_key), bits):
            out.append(k)
    return out


def test_ground_ids_solve_the_puzzle_and_random_ids_mostly_do_not() -> None:
    rng = random.Random(3)
    key, tries = grind_key(BITS, lambda: SigningKey(rng.randbytes(32)))
    assert puzzle_bits(node_id(key.public_key)) >= BITS and tries >= 1
    require_valid_id(node_id(key.public_key), BITS)
    randoms = [node_id(SigningKey(rng.randbytes(32)).public_key) for _ in range(2000)]
    share = sum(valid_id(i, BITS) for i in randoms) / len(randoms)
    assert share < 0.05  # expected 2^-6 = 1.6%
    assert all(valid_id(i, 0) for i in randoms)
    bad = next(i for i in randoms if not valid_id(i, BITS))
    with pytest.raises(IntegrityError, match="id puzzle"):
        require_valid_id(bad, BITS)
    with pytest.raises(ValueError):
        grind_key(99)


def test_identity_is_ground_on_first_start_and_a_weak_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    key = load_or_create(path, DEVNET_ID_BITS)
    assert valid_id(node_id(key.public_key), DEVNET_ID_BITS)
    assert load_or_create(path, DEVNET_ID_BITS).seed == key.seed  # kept, not ground again
    have = puzzle_bits(node_id(key.public_key))
    with pytest.raises(UsageError, match=f"solves a {have}-bit id puzzle and the network asks"):
        load_or_create(path, have + 1)


def test_routing_table_refuses_ids_without_the_puzzle() -> None:
    own = keys(BITS, 1, 1)[0]
    rt = RoutingTable(node_id(own.public_key), id_bits=BITS)
    good = [Contact(node_id(k.public_key), f"198.51.{i}.1:1") for i, k in enumerate(keys(BITS, 3, 2))]
    bad = [Contact(node_id(k.public_key), f"203.0.{i}.1:1") for i, k in enumerate(bad_keys(BITS, 3, 3))]
    for c in good + bad:
        rt.observe(c, 0.0)
    assert {c.node_id for c in rt.contacts()} == {c.node_id for c in good}
    assert rt.refused["puzzle"] == 3
    assert not rt.wants(bad[0].node_id) and rt.wants(node_id(keys(BITS, 1, 4)[0].public_key))


def test_one_network_holds_at_most_two_entries_of_a_bucket_and_ten_of_the_table() -> None:
    own = bytes(32)
    rt = RoutingTable(own)
    # Far half of the space (bucket 255): three ids from one /24, one from another, two on loopback.
    far = [bytes([0x80, i]) + bytes(30) for i in range(6)]
    addrs = ["93.184.216.1:1", "93.184.216.77:2", "93.184.216.200:3", "151.101.1.1:1", "127.0.0.1:5", "127.0.0.1:6"]
    for nid, a in zip(far, addrs, strict=True):
        rt.observe(Contact(nid, a), 0.0)
    assert [c.address for c in rt.bucket(255)] == [a for a in addrs if a != "93.184.216.200:3"]
    assert rt.refused["subnet"] == 1
    # Across buckets, one /24 gets at most ten entries of the table.
    rt2 = RoutingTable(own)
    for b in range(12):
        rt2.observe(Contact((1 << (200 + b)).to_bytes(32, "big"), f"93.184.216.{b}:1"), 0.0)
    assert len(rt2) == 10 and rt2.refused["subnet"] == 2
    # An evicted entry frees its network's slot.
    first = next(iter(rt2.contacts()))
    rt2.remove(first.node_id)
    rt2.observe(Contact((1 << 250).to_bytes(32, "big"), "93.184.216.99:1"), 0.0)
    assert len(rt2) == 10


def test_families_of_addresses() -> None:
    assert subnet_of("93.184.216.9") == subnet_of("93.184.216.250") == "net:93.184.216.0/24"
    assert subnet_of("93.184.217.9") != subnet_of("93.184.216.9")
    assert subnet_of("2001:db8:1::1") is None and subnet_of("203.0.113.5") is None  # documentation ranges
    assert subnet_of("2a00:1450:4001::1") == subnet_of("2a00:1450:ffff::2") == "net:2a00:1450::/32"
    for private in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "fe80::1", "::1"):
        assert subnet_of(private) is None


def test_records_of_ids_without_the_puzzle_are_refused() -> None:
    (good,), (bad,) = keys(BITS, 1, 5), bad_keys(BITS, 1, 6)
    exp = int(NOW) + 100
    assert decode_node_record(sign_node_record(good, "151.101.1.1:1", exp).raw, NOW, BITS).node_id == node_id(good.public_key)
    with pytest.raises(IntegrityError, match="id puzzle"):
        decode_node_record(sign_node_record(bad, "151.101.1.1:1", exp).raw, NOW, BITS)
    prec = sign_provider_record(bad, bytes(32), "151.101.1.1:1", (1,), exp)
    with pytest.raises(IntegrityError, match="id puzzle"):
        decode_provider_record(prec.raw, NOW, BITS)
    node = DhtNode(keys(BITS, 1, 7)[0], "151.101.1.2:1", DhtConfig(id_bits=BITS), now=NOW)
    assert node.handle(AddProvider(prec.raw), NOW, "peer") == Refused("invalid")
    assert node.handle(StoreNode(sign_node_record(bad, "x:1", exp).raw), NOW, "peer") == Refused("invalid")
    assert len(node.store) == 0
    good_prec = sign_provider_record(good, bytes(32), "151.101.1.1:1", (1,), exp)
    assert node.handle(AddProvider(good_prec.raw), NOW, "peer") != Refused("invalid")


def test_a_node_cannot_run_with_an_id_that_skips_the_puzzle() -> None:
    with pytest.raises(ValueError, match="id puzzle"):
        DhtNode(bad_keys(BITS, 1, 8)[0], "me:1", DhtConfig(id_bits=BITS), now=NOW)
    DhtNode(bad_keys(BITS, 1, 8)[0], "client:0", DhtConfig(id_bits=BITS), now=NOW, announce=False)  # a client may


def test_a_stranger_whose_id_skips_the_puzzle_is_not_even_pinged() -> None:
    node = DhtNode(keys(BITS, 1, 9)[0], "me:1", DhtConfig(id_bits=BITS), now=NOW)
    stranger = Contact(node_id(bad_keys(BITS, 1, 10)[0].public_key), "151.101.1.3:1")
    node.handle(FindNode(bytes(32), sender=stranger), NOW, "151.101.1.3")
    assert node.take_outgoing() == [] and node.stats["refused_ids"] == 1


def test_lookups_never_ask_contacts_whose_ids_skip_the_puzzle() -> None:
    target = bytes(32)
    good = [Contact(node_id(k.public_key), f"g{i}:1") for i, k in enumerate(keys(BITS, 4, 11))]
    bad = [Contact(node_id(k.public_key), f"b{i}:1") for i, k in enumerate(bad_keys(BITS, 4, 12))]
    lk = Lookup(target, good[:1] + bad[:2], k=4, alpha=3, paths=1, id_bits=BITS)
    assert lk.refused == 2
    (first,) = lk.next_queries()
    assert first == good[0]
    lk.on_reply(first.node_id, bad[2:] + good[1:])
    asked = lk.next_queries()
    assert set(asked) <= set(good[1:]) and asked
    assert lk.refused == 4


def test_in_a_network_with_a_puzzle_an_id_that_skips_it_is_never_routed_to() -> None:
    cfg = DhtConfig(id_bits=4, refresh_interval=10**9)
    net = DhtNetwork(seed=4, config=cfg)
    members = [net.add_node()]
    for _ in range(30):
        n = net.add_node()
        via = members[-1].contact
        net.act(n, lambda nd, now, via=via: nd.bootstrap([via], now))
        net.run()
        members.append(n)
    # A node that does not solve the puzzle runs by the old rules (id_bits 0) and joins anyway.
    cheat_key = bad_keys(4, 1, 13)[0]
    cheat = DhtNode(cheat_key, "cheat:1", DhtConfig(id_bits=0), now=net.clock.now())
    net.nodes[cheat.contact.key] = cheat
    net.act(cheat, lambda nd, now: nd.bootstrap([members[0].contact], now))
    net.run()
    assert len(cheat.routing) > 0  # it talked to the network, which answered it
    assert all(cheat.node_id not in m.routing for m in members)
    done: list[OpDone] = []
    net.listeners.append(lambda _n, ev: done.append(ev))
    net.act(members[5], lambda nd, now: nd.find_node(cheat.node_id, now))
    net.run()
    assert done and cheat.node_id not in [c.node_id for c in done[-1].closest]
    assert any(len(m.routing) > 0 for m in members)
