"""The mutable-slot wire schema (protocol/mutable.py): paths and bounded, strict bodies."""

from __future__ import annotations

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.mutable import MAX_RECORD, parse_checkstring, sign_record, slot_id
from veil.protocol.mutable import (
    VersionInfo,
    encode_conflict,
    encode_stored,
    encode_versions,
    parse_conflict,
    parse_slot_id,
    parse_stored,
    parse_versions,
    put_path,
    slot_path,
    versions_path,
)

KEY = SigningKey(bytes([1]) * 32)
SLOT = slot_id(KEY.public_key)


def test_paths() -> None:
    rec = sign_record(KEY, 3, b"x")
    assert slot_path(SLOT) == f"/v1/mutable/{SLOT.hex()}" and slot_path(SLOT, 2).endswith("?seq=2")
    assert put_path(SLOT, None).endswith("?expect=0")
    assert put_path(SLOT, None, cas=False) == slot_path(SLOT)
    text = put_path(SLOT, rec.checkstring).split("expect=")[1]
    assert parse_checkstring(text) == rec.checkstring
    assert versions_path(SLOT).endswith("/versions")
    assert parse_slot_id(SLOT.hex()) == SLOT
    for bad in ("", "zz" * 32, SLOT.hex()[:-2], SLOT.hex() + "00"):
        with pytest.raises(IntegrityError):
            parse_slot_id(bad)


def test_bodies_roundtrip_and_are_strict() -> None:
    rec = sign_record(KEY, 1, b"")
    assert parse_stored(encode_stored(1, rec.hash)).hash == rec.hash
    assert parse_conflict(encode_conflict("m", rec.raw)) == rec.raw
    assert parse_conflict(encode_conflict("m", None)) is None
    vs = [VersionInfo(2, bytes(32), 100), VersionInfo(1, bytes([1]) * 32, 90)]
    assert parse_versions(encode_versions(vs)) == vs
    for bad in ({"seq": 0, "hash": bytes(32)}, {"seq": 1, "hash": b"short"}, {"seq": 1, "hash": bytes(32), "x": 1}):
        with pytest.raises(IntegrityError):
            parse_stored(bad)
    with pytest.raises(IntegrityError):
        parse_conflict(cbor.encode({"error": "conflict", "message": "m", "current": "text"}))
    with pytest.raises(IntegrityError):
        parse_conflict(cbor.encode({"error": "conflict", "message": "m", "current": bytes(MAX_RECORD + 1)}))
    with pytest.raises(IntegrityError):
        parse_versions({"versions": [{"seq": 1, "hash": bytes(32), "size": -1}]})
    with pytest.raises(IntegrityError):
        parse_versions({"versions": "no"})
