"""Batched announcing: region sizes, grouping, record assignment and request chunks; the
region memory's freshness and forgetting."""

from __future__ import annotations

from veil.crypto.sign import SigningKey
from veil.dht.batch import assign, chunks, group_by_region, region_bits
from veil.dht.ids import ID_BITS, Contact
from veil.dht.messages import BATCH_BYTES, MAX_BATCH_RECORDS
from veil.dht.records import sign_provider_record
from veil.dht.regions import RegionCache


def contact(i: int) -> Contact:
    return Contact(i.to_bytes(32, "big"), f"h:{i + 1}")


def test_region_bits_grow_with_the_network() -> None:
    assert region_bits(0, [contact(i) for i in range(1, 10)], 20) == 0  # fewer than k: one region
    # k nearest within 2^250 of us: about 20 * 2^6 nodes in all, regions of 2^(256-7) hold ~k/2
    near = [contact((i + 1) << 245) for i in range(20)]
    assert region_bits(0, near, 20) == ID_BITS - (20 << 245).bit_length() + 1
    assert region_bits(0, [contact(1 << 255)] * 20, 20) == 1


def test_group_by_region_and_assign() -> None:
    keys = [bytes([b]) + bytes(31) for b in (0x01, 0x81, 0x02, 0xF0, 0x01)]
    assert group_by_region(keys, 0) == [sorted(set(keys))]
    assert group_by_region(keys, 1) == [[keys[0], keys[2]], [keys[1], keys[3]]]
    key = SigningKey(bytes(32))
    recs = [sign_provider_record(key, k, "p:1", (0,), 2_000_000_000) for k in (bytes(32), b"\xff" * 32)]
    cands = [contact(1), contact(2), contact((1 << 256) - 1)]
    out = assign(recs, cands, 2)
    assert {ck: len(raws) for ck, (_, raws) in out.items()} == {1: 1, 2: 2, (1 << 256) - 1: 1}
    assert sum(len(r) for _, r in out.values()) == 4


def test_chunks_stay_within_the_message_bounds() -> None:
    raws = [bytes(300)] * 200
    parts = chunks(raws)
    assert sum(len(p) for p in parts) == 200
    assert all(len(p) <= MAX_BATCH_RECORDS and sum(len(r) for r in p) <= BATCH_BYTES for p in parts)
    assert chunks([]) == []


def test_region_cache_freshness_and_forget() -> None:
    rc = RegionCache(ttl=30)
    k1, k2 = bytes(32), b"\x80" + bytes(31)
    assert rc.get(k1, 1, 0.0) is None
    rc.put(k1, 1, [contact(5), contact(1)], 0.0)
    assert [c.key for c in rc.get(k1, 1, 10.0) or []] == [1, 5]  # nearest the key first
    assert rc.get(k2, 1, 10.0) is None  # another region
    assert rc.get(k1, 0, 10.0) is None  # other region size
    assert rc.get(k1, 1, 30.0) is None  # stale
    rc.put(k1, 1, [contact(5), contact(1)], 40.0)
    rc.forget(contact(1).node_id)
    assert [c.key for c in rc.get(k1, 1, 41.0) or []] == [5]
    assert (rc.hits, rc.misses) == (2, 4)
