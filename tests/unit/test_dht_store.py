"""Record store limits and expiry, the republish schedule, and per-peer rate limiting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey
from veil.dht.ratelimit import PeerRateLimiter, TokenBucket
from veil.dht.records import sign_node_record, sign_provider_record
from veil.dht.store import RecordStore, RepublishSchedule, StoreLimits
from veil.testing.clock import ManualClock

NOW = 1_700_000_000
KEYS = [SigningKey(bytes([i]) * 32) for i in range(1, 8)]
SI = bytes(32)


def prov(i: int, exp: int, si: bytes = SI):  # type: ignore[no-untyped-def]
    return sign_provider_record(KEYS[i], si, f"n{i}:1", (i,), exp)


def test_providers_expire_and_newer_replaces_older() -> None:
    s = RecordStore()
    assert s.add_provider(prov(0, NOW + 100), NOW)
    assert s.add_provider(prov(1, NOW + 50), NOW)
    assert [r.provider_id for r in s.providers(SI, NOW, 10)] == [prov(0, NOW + 100).provider_id, prov(1, NOW + 50).provider_id]
    assert not s.add_provider(prov(0, NOW + 90), NOW)  # older than what is held
    assert s.add_provider(prov(0, NOW + 200), NOW)
    assert len(s) == 2
    assert [r.expires for r in s.providers(SI, NOW + 60, 10)] == [NOW + 200]
    assert s.expire(NOW + 300) == 1 and len(s) == 0
    assert not s.add_provider(prov(2, NOW + 10), NOW + 10)  # already expired


def test_limits_per_key_per_author_and_total() -> None:
    s = RecordStore(StoreLimits(per_key=2, per_author=2, max_records=3))
    assert s.add_provider(prov(0, NOW + 100), NOW)
    assert s.add_provider(prov(1, NOW + 100), NOW)
    assert not s.add_provider(prov(2, NOW + 100), NOW)  # key full
    other = bytes([1]) * 32
    assert s.add_provider(prov(0, NOW + 100, other), NOW)
    assert not s.add_provider(prov(0, NOW + 100, bytes([2]) * 32), NOW)  # author 0 at its quota
    assert not s.add_provider(prov(3, NOW + 100, bytes([3]) * 32), NOW)  # store full
    assert s.expire(NOW + 101) == 3
    assert s.add_provider(prov(3, NOW + 200, bytes([3]) * 32), NOW + 101)


def test_full_key_frees_expired_slots() -> None:
    s = RecordStore(StoreLimits(per_key=1))
    assert s.add_provider(prov(0, NOW + 10), NOW)
    assert s.add_provider(prov(1, NOW + 100), NOW + 20)


def test_node_records() -> None:
    s = RecordStore()
    r1 = sign_node_record(KEYS[0], "a:1", NOW + 100)
    r2 = sign_node_record(KEYS[0], "b:1", NOW + 200)
    assert s.put_node_record(r1, NOW)
    assert s.put_node_record(r2, NOW)
    assert not s.put_node_record(r1, NOW)
    assert s.node_record(r1.node_id, NOW) == r2
    assert s.node_record(r1.node_id, NOW + 200) is None and len(s) == 0


def test_republish_schedule() -> None:
    r = RepublishSchedule(10.0)
    r.add(b"a", 0.0)
    r.add(b"b", 5.0)
    assert r.due(9.0) == [] and r.next_due() == 10.0
    assert r.due(12.0) == [b"a"]
    r.remove(b"b")
    assert r.due(100.0) == [b"a"] and b"b" not in r
    assert r.next_due() == 110.0


def test_token_bucket_with_manual_clock() -> None:
    clock = ManualClock(0)
    b = TokenBucket.full(rate=2.0, burst=4.0, now=clock())
    assert all(b.take(clock()) for _ in range(4))
    assert not b.take(clock())
    clock.advance(0.5)
    assert b.take(clock()) and not b.take(clock())
    clock.advance(100)
    assert sum(b.take(clock()) for _ in range(10)) == 4  # never more than the burst


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 2)), max_size=200))
def test_limiter_never_exceeds_rate_plus_burst(events: list[tuple[int, float]]) -> None:
    lim = PeerRateLimiter(rate=3.0, burst=5.0, max_peers=100)
    now = 0.0
    allowed = dict.fromkeys(range(6), 0)
    for peer, dt in events:
        now += dt
        allowed[peer] += lim.allow(str(peer), now)
    for n in allowed.values():
        assert n <= 5 + 3.0 * now + 1e-9


def test_limiter_forgets_least_recent_peer_when_full() -> None:
    lim = PeerRateLimiter(rate=1.0, burst=1.0, max_peers=2)
    assert lim.allow("a", 0) and lim.allow("b", 0) and lim.allow("c", 0)
    assert len(lim) == 2
    assert not lim.allow("c", 0)
