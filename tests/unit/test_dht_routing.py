"""Routing table: bucket invariants, least-recently-seen eviction with ping-before-evict,
replacement cache, and closest-k against brute force."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from veil.dht.ids import ID_BYTES, Contact, bucket_index, distance, from_int, random_id_in_bucket, to_int
from veil.dht.routing import PingNeeded, RoutingTable

ids = st.binary(min_size=ID_BYTES, max_size=ID_BYTES)


def contact(i: int | bytes) -> Contact:
    nid = i if isinstance(i, bytes) else from_int(i)
    return Contact(nid, f"h{nid.hex()}:1")  # one host per id: no two share a network


def check_invariants(rt: RoutingTable) -> None:
    total = 0
    for i in range(256):
        b = rt.bucket(i)
        assert len(b) <= rt.k
        assert len({c.key for c in b}) == len(b)
        for c in b:
            assert bucket_index(rt.own, c.key) == i
            assert c.key != rt.own
        assert len(rt.replacements(i)) <= rt.replacement_size
        total += len(b)
    assert total == len(rt)


def test_ids() -> None:
    a, b = bytes(32), b"\x80" + bytes(31)
    assert distance(a, b) == 1 << 255
    assert bucket_index(to_int(a), to_int(b)) == 255
    assert bucket_index(5, 5) == -1
    assert from_int(to_int(b)) == b
    rng = random.Random(1)
    for i in (0, 1, 7, 200, 255):
        assert bucket_index(to_int(a), to_int(random_id_in_bucket(a, i, rng.getrandbits))) == i


@given(own=ids, others=st.lists(ids, max_size=300), target=ids, count=st.integers(1, 40), k=st.integers(1, 8))
def test_closest_matches_brute_force(own: bytes, others: list[bytes], target: bytes, count: int, k: int) -> None:
    rt = RoutingTable(own, k=k)
    for o in others:
        rt.observe(contact(o), 0.0)
    check_invariants(rt)
    everything = list(rt.contacts())
    t = to_int(target)
    want = sorted(everything, key=lambda c: c.key ^ t)[:count]
    assert rt.closest(target, count) == want


@given(
    own=ids,
    ops=st.lists(st.tuples(st.sampled_from(["observe", "fail", "ping_ok", "ping_dead", "remove"]), st.integers(0, 63)), max_size=400),
    k=st.integers(1, 5),
)
def test_invariants_under_any_sequence(own: bytes, ops: list[tuple[str, int]], k: int) -> None:
    # A small id pool whose ids crowd into few buckets, so buckets fill and evict.
    rng = random.Random(own)
    pool = [contact(to_int(own) ^ rng.getrandbits(rng.choice([3, 5, 8, 256]) or 1)) for _ in range(64)]
    rt = RoutingTable(own, k=k, replacements=3)
    for op, i in ops:
        c = pool[i]
        if op == "observe":
            ping = rt.observe(c, 0.0)
            if ping is not None:
                assert ping.contact in rt.bucket(bucket_index(rt.own, ping.contact.key))
        elif op == "fail":
            rt.failed(c.node_id)
        elif op == "ping_ok":
            rt.ping_result(c.node_id, True, 0.0)
        elif op == "ping_dead":
            rt.ping_result(c.node_id, False, 0.0)
        else:
            rt.remove(c.node_id)
        check_invariants(rt)


def bucket_mates(own: int, index: int, n: int) -> list[Contact]:
    rng = random.Random(index)
    return [contact(own ^ ((1 << index) | rng.getrandbits(index))) for _ in range(n)]


def test_full_bucket_pings_least_recently_seen_and_keeps_it_if_alive() -> None:
    own = 0
    rt = RoutingTable(from_int(own), k=3, replacements=2)
    a, b, c, d, e = bucket_mates(own, 100, 5)
    for x in (a, b, c):
        assert rt.observe(x, 0.0) is None
    rt.observe(a, 1.0)  # a is now the most recently seen; b is the oldest
    assert rt.observe(d, 2.0) == PingNeeded(b)
    assert rt.observe(e, 2.0) is None  # one ping per bucket at a time
    assert rt.replacements(100) == [d, e]
    rt.ping_result(b.node_id, True, 3.0)
    assert rt.bucket(100) == [c, a, b]  # b answered: it stays, and is now the freshest
    assert d not in rt.bucket(100)


def test_dead_contact_is_replaced_by_freshest_replacement() -> None:
    own = 0
    rt = RoutingTable(from_int(own), k=2, replacements=2)
    a, b, c, d = bucket_mates(own, 50, 4)
    rt.observe(a, 0.0)
    rt.observe(b, 0.0)
    assert rt.observe(c, 1.0) == PingNeeded(a)
    rt.observe(d, 1.0)
    rt.ping_result(a.node_id, False, 2.0)
    assert rt.bucket(50) == [b, d]
    assert rt.replacements(50) == [c]


def test_failures_evict_after_max_failures_or_at_once_with_a_replacement() -> None:
    own = 0
    rt = RoutingTable(from_int(own), k=2, replacements=2, max_failures=2)
    a, b, c = bucket_mates(own, 30, 3)
    rt.observe(a, 0.0)
    rt.observe(b, 0.0)
    rt.failed(a.node_id)
    assert a.node_id in rt
    rt.observe(a, 1.0)  # answering again forgives
    rt.failed(a.node_id)
    assert a.node_id in rt
    rt.failed(a.node_id)
    assert a.node_id not in rt
    rt.observe(a, 2.0)
    rt.observe(c, 2.0)  # bucket full: c waits as a replacement
    rt.failed(b.node_id)  # a replacement is waiting, so one failure is enough
    assert b.node_id not in rt and c.node_id in rt


def test_never_holds_itself() -> None:
    own = bytes(range(32))
    rt = RoutingTable(own)
    assert rt.observe(Contact(own, "x:1"), 0.0) is None
    assert len(rt) == 0 and not rt.wants(own)


def test_stale_buckets_and_wants() -> None:
    rt = RoutingTable(from_int(0), k=1, replacements=1)
    a, b, c = bucket_mates(0, 10, 3)
    assert rt.wants(a.node_id)
    rt.observe(a, 0.0)
    assert not rt.wants(a.node_id) and rt.wants(b.node_id)
    rt.observe(b, 0.0)
    assert not rt.wants(c.node_id)  # bucket and replacement cache full
    assert rt.stale_buckets(100.0, 50.0) == [10]
    rt.touch_bucket_of(c.node_id, 100.0)
    assert rt.stale_buckets(100.0, 50.0) == []
