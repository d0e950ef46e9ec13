"""The sans-I/O DHT node on the fake network: provider and node records end to end over the
wire encoding, republishing, refusal of forged records, rate limits, sender verification."""

from __future__ import annotations

import random

from veil.crypto.sign import SigningKey
from veil.dht.ids import Contact
from veil.dht.messages import AddProvider, AddProviders, FindNode, Nodes, Ping, Pong, Refused, Stored
from veil.dht.node import DhtConfig, DhtNode, OpDone
from veil.dht.records import sign_provider_record
from veil.testing.dhtnet import DhtNetwork

NOW = 1_700_000_000.0
OPEN = DhtConfig(id_bits=0)  # these tests use ids of any key


def network(n: int, config: DhtConfig | None = None, wire: bool = True) -> tuple[DhtNetwork, list[DhtNode]]:
    net = DhtNetwork(seed=n, config=config, wire=wire)
    rng = random.Random(n)
    members = [net.add_node()]
    while len(members) < n:
        wave = []
        for _ in range(min(20, n - len(members))):
            node = net.add_node()
            via = members[rng.randrange(len(members))].contact
            net.act(node, lambda nd, now, via=via: nd.bootstrap([via], now))
            wave.append(node)
        net.run()
        members += wave
    return net, members


def collect(net: DhtNetwork, node: DhtNode) -> list[OpDone]:
    out: list[OpDone] = []
    net.listeners.append(lambda n, ev: out.append(ev) if n is node else None)
    return out


def test_provide_then_find_providers_over_the_wire() -> None:
    net, members = network(80)
    si = bytes(range(32))
    provider, seeker = members[5], members[60]
    pdone = collect(net, provider)
    net.act(provider, lambda nd, now: nd.provide(si, (0, 4), now))
    net.run()
    assert pdone[-1].kind == "provide" and pdone[-1].stored >= 15
    sdone = collect(net, seeker)
    net.act(seeker, lambda nd, now: nd.find_providers(si, now, want=1))
    net.run()
    (ev,) = sdone
    assert [(p.provider_id, p.shares, p.address) for p in ev.providers] == [
        (provider.node_id, (0, 4), provider.contact.address)
    ]


def test_provide_many_announces_every_key_with_a_few_requests() -> None:
    """A batch: one lookup per keyspace region, the records grouped per node; every key is then
    found by another node, for far fewer messages than one provide per key."""
    keys = [bytes([i]) + bytes(range(31)) for i in range(0, 250, 5)]  # 50 keys over the keyspace
    counts = []
    for batched in (True, False):
        net, members = network(80)
        provider, seeker = members[7], members[70]
        before = net.messages
        if batched:
            net.act(provider, lambda nd, now: nd.provide_many([(k, (i % 10,)) for i, k in enumerate(keys)], now))
        else:
            for i, k in enumerate(keys):
                net.act(provider, lambda nd, now, i=i, k=k: nd.provide(k, (i % 10,), now))
        net.run()
        counts.append(net.messages - before)
        assert provider.providing == len(keys)
        for i, k in enumerate(keys):
            done = collect(net, seeker)
            net.act(seeker, lambda nd, now, k=k: nd.find_providers(k, now, want=1))
            net.run()
            assert [(p.provider_id, p.shares) for p in done[-1].providers] == [(provider.node_id, (i % 10,))]
    assert counts[0] * 3 < counts[1], counts


def test_provide_many_on_a_small_network_is_one_lookup() -> None:
    net, members = network(8)
    provider = members[0]
    done = collect(net, provider)
    keys = [bytes([i]) * 32 for i in range(30)]
    net.act(provider, lambda nd, now: nd.provide_many([(k, (0,)) for k in keys], now))
    net.run()
    assert [ev.kind for ev in done] == ["provide_batch"] and done[0].stored == 7
    for m in members[1:]:
        assert all(m.store.providers(k, net.clock.now(), 1) for k in keys)
    before = net.messages  # a second batch moments later: the region is remembered, no lookup
    more = [bytes([i, 200]) * 16 for i in range(30)]
    net.act(provider, lambda nd, now: nd.provide_many([(k, (1,)) for k in more], now))
    net.run()
    assert net.messages - before == 7 and done[-1].stored == 7  # one request per node
    assert all(members[3].store.providers(k, net.clock.now(), 1) for k in more)


def test_add_providers_stores_the_valid_records() -> None:
    node = DhtNode(SigningKey(bytes(32)), "me:1", OPEN, now=NOW)
    key = SigningKey(bytes([1]) * 32)
    good = [sign_provider_record(key, bytes([i]) * 32, "p:1", (i,), int(NOW) + 100).raw for i in range(3)]
    forged = bytearray(good[0])
    forged[-1] ^= 1
    assert node.handle(AddProviders(tuple(good)), NOW, "peer") == Stored(True)
    assert node.handle(AddProviders((bytes(forged), good[1])), NOW, "peer") == Stored(False)
    assert len(node.store) == 3 and node.stats["bad_records"] == 1


def test_node_record_publish_and_find_value() -> None:
    net, members = network(60)
    a, b = members[3], members[40]
    net.act(a, lambda nd, now: nd.publish_node_record(now))
    net.run()
    done = collect(net, b)
    net.act(b, lambda nd, now: nd.find_value(a.node_id, now))
    net.run()
    (ev,) = done
    assert ev.record is not None and ev.record.node_id == a.node_id and ev.record.address == a.contact.address


def test_provider_records_are_republished_before_they_expire() -> None:
    cfg = DhtConfig(record_ttl=600, republish_interval=300, refresh_interval=10**9, id_bits=0)
    net, members = network(40, cfg, wire=False)
    si = bytes([9]) * 32
    provider, seeker = members[1], members[30]
    net.act(provider, lambda nd, now: nd.provide(si, (1,), now))
    net.run()
    start = net.clock.now()

    def run_for(seconds: float) -> None:
        end = net.clock.now() + seconds
        while net.clock.now() < end:
            for m in members:
                net.act(m, lambda nd, now: nd.tick(now))
            net.run(until=net.clock.now() + 30)

    def found() -> bool:
        done = collect(net, seeker)
        net.act(seeker, lambda nd, now: nd.find_providers(si, now, want=1))
        net.run()
        return bool(done[-1].providers)

    run_for(1500)  # 2.5 lifetimes of the first record
    assert net.clock.now() - start >= 1500
    assert found()
    provider.unprovide(si)
    run_for(700)
    assert not found()


def test_forged_and_expired_provider_records_are_refused() -> None:
    node = DhtNode(SigningKey(bytes(32)), "me:1", OPEN, now=NOW)
    key = SigningKey(bytes([1]) * 32)
    good = sign_provider_record(key, bytes(32), "p:1", (), int(NOW) + 100)
    forged = bytearray(good.raw)
    forged[-1] ^= 1
    assert node.handle(AddProvider(bytes(forged)), NOW, "peer") == Refused("invalid")
    assert node.handle(AddProvider(good.raw), NOW + 200, "peer") == Refused("invalid")
    assert len(node.store) == 0
    assert node.handle(AddProvider(good.raw), NOW, "peer") == Stored(True)
    assert len(node.store) == 1


def test_a_flooding_peer_is_rate_limited_and_others_are_not() -> None:
    cfg = DhtConfig(request_rate=10, request_burst=20, store_rate=1, store_burst=3, id_bits=0)
    node = DhtNode(SigningKey(bytes(32)), "me:1", cfg, now=NOW)
    answers = [node.handle(FindNode(bytes(32)), NOW, "10.0.0.1") for _ in range(100)]
    assert sum(isinstance(a, Nodes) for a in answers) == 20
    assert all(a == Refused("rate_limited") for a in answers[20:])
    assert isinstance(node.handle(FindNode(bytes(32)), NOW, "10.0.0.2"), Nodes)
    assert isinstance(node.handle(FindNode(bytes(32)), NOW + 1, "10.0.0.1"), Nodes)  # refilled
    key = SigningKey(bytes([1]) * 32)
    stores = [
        node.handle(AddProvider(sign_provider_record(key, bytes([i]) * 32, "p:1", (), int(NOW) + 100).raw), NOW + 5, "10.0.0.3")
        for i in range(10)
    ]
    assert sum(s == Stored(True) for s in stores) == 3


def test_claimed_senders_enter_the_table_only_after_answering_a_ping() -> None:
    node = DhtNode(SigningKey(bytes(32)), "me:1", OPEN, now=NOW)
    stranger = Contact(bytes([7]) * 32, "stranger:1")
    node.handle(FindNode(bytes(32), sender=stranger), NOW, "1.2.3.4")
    assert stranger.node_id not in node.routing
    (send,) = node.take_outgoing()
    assert send.to == stranger and isinstance(send.message, Ping)
    node.handle(FindNode(bytes(32), sender=stranger), NOW, "1.2.3.4")
    assert node.take_outgoing() == []  # one verification at a time
    node.on_timeout(send.request_id, NOW + 1)
    assert stranger.node_id not in node.routing
    node.handle(FindNode(bytes(32), sender=stranger), NOW + 2, "1.2.3.4")
    (send,) = node.take_outgoing()
    node.on_reply(send.request_id, Pong(), NOW + 3)
    assert node.routing.get(stranger.node_id) == stranger


def test_wrong_reply_type_is_a_failure() -> None:
    node = DhtNode(SigningKey(bytes(32)), "me:1", OPEN, now=NOW)
    peer = Contact(bytes([7]) * 32, "peer:1")
    node.routing.observe(peer, NOW)
    op = node.find_node(bytes([1]) * 32, NOW)
    (send,) = node.take_outgoing()
    node.on_reply(send.request_id, Pong(), NOW)  # a FIND_NODE answered with a PONG
    (ev,) = node.take_events()
    assert ev.op_id == op and ev.closest == () and ev.failures == 1
