"""Signed DHT records: round trips, and rejection of forged, tampered, unsigned, expired,
overlong-lived, oversized and mis-bound records."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey, node_id
from veil.dht.records import (
    MAX_RECORD_SIZE,
    MAX_TTL,
    NodeRecord,
    ProviderRecord,
    check_operator,
    decode_node_record,
    decode_provider_record,
    decode_record,
    sign_node_record,
    sign_provider_record,
)
from veil.errors import IntegrityError
from veil.format import cbor

NOW = 1_700_000_000
KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
SI = bytes(range(100, 132))


def node_rec() -> NodeRecord:
    return sign_node_record(KEY, "127.0.0.1:4001", NOW + 3600)


def prov_rec() -> ProviderRecord:
    return sign_provider_record(KEY, SI, "127.0.0.1:4001", (0, 3, 7), NOW + 3600)


def test_round_trip() -> None:
    n = node_rec()
    assert decode_node_record(n.raw, NOW) == n
    assert n.node_id == node_id(KEY.public_key)
    p = prov_rec()
    got = decode_provider_record(p.raw, NOW)
    assert got == p and got.shares == (0, 3, 7) and got.key == SI
    assert got.contact.node_id == n.node_id


@given(
    address=st.text(min_size=1, max_size=60),
    shares=st.sets(st.integers(0, 255), max_size=40),
    ttl=st.integers(1, MAX_TTL),
)
def test_round_trip_property(address: str, shares: set[int], ttl: int) -> None:
    p = sign_provider_record(KEY, SI, address, tuple(sorted(shares)), NOW + ttl)
    assert decode_record(p.raw, NOW) == p


def _mutations(value: Any) -> list[Any]:
    if isinstance(value, bytes):
        return [bytes([value[0] ^ 1]) + value[1:]] if value else [b"\x00"]
    if isinstance(value, str):
        return [value + "x", chr(ord(value[0]) ^ 1) + value[1:]]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, list):
        return [[*value, 200], value[:-1]]
    raise AssertionError(type(value))


@pytest.mark.parametrize("make", [node_rec, prov_rec])
def test_tamper_every_field(make: Any) -> None:
    rec = make()
    m = cbor2.loads(rec.raw)
    for field in m:
        for bad in _mutations(m[field]):
            tampered = dict(m)
            tampered[field] = bad
            with pytest.raises(IntegrityError):
                decode_record(cbor.encode(tampered), NOW)


@pytest.mark.parametrize("make", [node_rec, prov_rec])
def test_every_byte_flip_is_rejected(make: Any) -> None:
    raw = make().raw
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            decode_record(bytes(bad), NOW)


def test_forged_signature_by_another_key() -> None:
    m = cbor2.loads(node_rec().raw)
    forged = sign_node_record(OTHER, "127.0.0.1:4001", NOW + 3600)
    m["sig"] = cbor2.loads(forged.raw)["sig"]
    with pytest.raises(IntegrityError):
        decode_record(cbor.encode(m), NOW)


def test_claiming_someone_elses_id_is_rejected() -> None:
    # A valid signature by OTHER over a record carrying KEY's node id.
    from veil.crypto import labels
    from veil.crypto.hashes import TaggedHash

    body = cbor2.loads(node_rec().raw)
    del body["sig"]
    body["pk"] = OTHER.public_key
    sig = OTHER.sign(TaggedHash(labels.DHT_NODE_RECORD)(cbor.encode(body)))
    with pytest.raises(IntegrityError, match="node id"):
        decode_record(cbor.encode({**body, "sig": sig}), NOW)


def test_unsigned_expired_and_overlong() -> None:
    m = cbor2.loads(prov_rec().raw)
    del m["sig"]
    with pytest.raises(IntegrityError):
        decode_record(cbor.encode(m), NOW)
    rec = prov_rec()
    with pytest.raises(IntegrityError, match="expired"):
        decode_record(rec.raw, rec.expires)
    long_lived = sign_node_record(KEY, "a:1", NOW + MAX_TTL + 10)
    with pytest.raises(IntegrityError, match="longer"):
        decode_record(long_lived.raw, NOW)


def test_oversized_and_malformed() -> None:
    with pytest.raises(IntegrityError):
        decode_record(node_rec().raw + bytes(MAX_RECORD_SIZE), NOW)
    with pytest.raises(ValueError):
        sign_node_record(KEY, "x" * 300, NOW + 10)
    for junk in (b"", b"\xff", cbor.encode([1, 2]), cbor.encode({"magic": "nope"})):
        with pytest.raises(IntegrityError):
            decode_record(junk, NOW)
    m = cbor2.loads(node_rec().raw)
    m["v"] = 2
    with pytest.raises(IntegrityError, match="version"):
        decode_record(cbor.encode(m), NOW)


def test_kinds_cannot_be_confused() -> None:
    # A node record relabelled as a provider record (with the extra fields) fails the signature,
    # because each kind signs under its own label.
    m = cbor2.loads(node_rec().raw)
    m.update(kind="provider", key=SI, shares=[])
    with pytest.raises(IntegrityError):
        decode_record(cbor.encode(m), NOW)
    with pytest.raises(IntegrityError):
        decode_provider_record(node_rec().raw, NOW)
    with pytest.raises(IntegrityError):
        decode_node_record(prov_rec().raw, NOW)


def test_bad_shares_are_refused_when_signing() -> None:
    for shares in ((3, 1), (1, 1), (256,), (-1,)):
        with pytest.raises(ValueError):
            sign_provider_record(KEY, SI, "a:1", shares, NOW + 10)


@pytest.mark.parametrize("make", [node_rec, prov_rec])
def test_a_float_or_a_tag_in_any_field_is_refused(make: Any) -> None:
    """Records are decoded without the generic type walk; every field's own check catches these."""
    m = cbor2.loads(make().raw)
    for field in m:
        for bad in (float(1), cbor2.CBORTag(24, b"x")):
            with pytest.raises(IntegrityError):
                decode_record(cbor2.dumps({**m, field: bad}, canonical=True), NOW)


def test_a_node_record_carries_its_declared_operator_signed() -> None:
    """Issue 18: `veil node run --operator LABEL` declares the node's family in its signed record
    (field ``op``); a changed or malformed label does not verify, and a record without one is
    still valid (no label)."""
    rec = sign_node_record(KEY, "127.0.0.1:4001", NOW + 3600, "acme-storage")
    assert decode_node_record(rec.raw, NOW).operator == "acme-storage"
    assert decode_node_record(node_rec().raw, NOW).operator == ""
    m = cbor2.loads(rec.raw)
    m["op"] = "mallory"  # relabelled by whoever passes the record on: the signature no longer holds
    with pytest.raises(IntegrityError, match="signature"):
        decode_node_record(cbor.encode(m), NOW)
    for bad in ("", "Acme", "a b", "x" * 65, "évil"):
        with pytest.raises(ValueError, match="operator label"):
            sign_node_record(KEY, "127.0.0.1:4001", NOW + 3600, bad) if bad else check_operator(bad)
    m["op"] = "UPPER"
    with pytest.raises(IntegrityError, match="operator label"):
        decode_node_record(cbor.encode(m), NOW)
