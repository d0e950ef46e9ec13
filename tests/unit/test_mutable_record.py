"""Signed mutable slot records (format/mutable.py): round trips, bounds, and every signed byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError
from veil.format.mutable import (
    MAX_HEADER,
    MAX_PARENTS,
    MAX_PAYLOAD,
    MAX_RECORD,
    OVERHEAD,
    Checkstring,
    parse_checkstring,
    parse_record,
    record_length,
    sign_record,
    slot_id,
)

KEY = SigningKey(bytes(range(32)))
SLOT = slot_id(KEY.public_key)


@settings(max_examples=50)
@given(st.integers(2, 2**63 - 1), st.binary(max_size=2000), st.data())
def test_roundtrip(seq: int, payload: bytes, data: st.DataObject) -> None:
    parents = tuple(data.draw(st.lists(st.builds(Checkstring, st.integers(1, seq - 1), st.binary(min_size=32, max_size=32)),
                                       max_size=MAX_PARENTS)))
    cut = data.draw(st.integers(0, len(parents)))
    rec = sign_record(KEY, seq, payload, parents[:cut], parents[cut:])
    got = parse_record(rec.raw, SLOT)
    assert (got.seq, got.parents, got.payload, got.public_key, got.raw) == (seq, parents, payload, KEY.public_key, rec.raw)
    assert got.chain == parents[:cut] and got.chain_len == cut
    assert got.checkstring == rec.checkstring
    assert record_length(rec.raw[:MAX_HEADER]) == len(rec.raw) == OVERHEAD + 40 * len(parents) + len(payload)


def test_every_byte_is_signed() -> None:
    raw = sign_record(KEY, 7, b"sealed listing bytes", (Checkstring(6, bytes(32)), Checkstring(3, bytes([1]) * 32))).raw
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            parse_record(bytes(bad), SLOT)


def test_another_writers_record_is_refused_for_this_slot() -> None:
    other = SigningKey(bytes([9]) * 32)
    rec = sign_record(other, 1, b"x")
    with pytest.raises(IntegrityError, match="another slot"):
        parse_record(rec.raw, SLOT)
    parse_record(rec.raw, slot_id(other.public_key))


def test_bounds_are_checked_before_the_signature() -> None:
    rec = sign_record(KEY, 1, b"abc")
    for bad in (b"", rec.raw[:48], rec.raw[:-1], rec.raw + b"\0", b"XXXX" + rec.raw[4:], rec.raw[:4] + b"\x02" + rec.raw[5:]):
        with pytest.raises(IntegrityError):
            parse_record(bad, SLOT)
    with pytest.raises(IntegrityError, match="limit"):
        parse_record(bytes(MAX_RECORD + 1), SLOT)
    huge_len = rec.raw[:47] + (MAX_PAYLOAD + 1).to_bytes(4, "big")
    with pytest.raises(IntegrityError, match="too large"):
        record_length(huge_len)
    with pytest.raises(IntegrityError, match="parents"):
        record_length(rec.raw[:45] + bytes([MAX_PARENTS + 1]) + bytes(600))
    with pytest.raises(IntegrityError, match="parents"):
        record_length(rec.raw[:45] + bytes([1, 2]) + bytes(100))  # a chain longer than the parents
    with pytest.raises(ValueError):
        sign_record(KEY, 3, b"", (Checkstring(3, bytes(32)),))  # a parent must be older
    with pytest.raises(ValueError):
        sign_record(KEY, 0, b"")
    with pytest.raises(ValueError):
        sign_record(KEY, 1, bytes(MAX_PAYLOAD + 1))


def test_seq_zero_is_refused_even_when_signed() -> None:
    rec = sign_record(KEY, 1, b"")
    from veil.format.mutable import _SIG_PREFIX  # forge a correctly signed seq-0 record

    body = rec.raw[:37] + (0).to_bytes(8, "big") + rec.raw[45:-64]
    with pytest.raises(IntegrityError, match="sequence"):
        parse_record(body + KEY.sign(_SIG_PREFIX + body), SLOT)
    # a signed record whose parent is not older than itself
    child = sign_record(KEY, 5, b"", (Checkstring(4, bytes(32)),)).raw
    body = child[:47] + (5).to_bytes(8, "big") + child[55:-64]
    with pytest.raises(IntegrityError, match="parent"):
        parse_record(body + KEY.sign(_SIG_PREFIX + body), SLOT)


def test_checkstrings() -> None:
    cs = sign_record(KEY, 5, b"").checkstring
    assert parse_checkstring(cs.to_text()) == cs
    assert parse_checkstring("0") is None
    for bad in ("", "5", "5-", "x-" + "0" * 64, "0-" + "0" * 64, "5-" + "0" * 63, "5-" + "g" * 64, "-1-" + "0" * 64):
        with pytest.raises(IntegrityError):
            parse_checkstring(bad)
    assert Checkstring(2, b"\0" * 32) > Checkstring(1, b"\xff" * 32)
    assert Checkstring(2, b"\1" * 32) > Checkstring(2, b"\0" * 32)
