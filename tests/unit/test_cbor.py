from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError
from veil.format import cbor

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.binary(max_size=20) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_roundtrip_is_canonical(v: object) -> None:
    enc = cbor.encode(v)
    assert cbor.decode(enc, len(enc)) == v
    assert cbor.encode(cbor.decode(enc, len(enc))) == enc


def test_rejects_non_canonical_tags_floats_and_oversize() -> None:
    with pytest.raises(IntegrityError):
        cbor.decode(bytes.fromhex("1817"), 10)  # 23 encoded in two bytes
    with pytest.raises(IntegrityError):
        cbor.decode(bytes.fromhex("a26162016161"), 10)  # truncated
    with pytest.raises(IntegrityError):
        cbor.decode(bytes.fromhex("a2616201616102"), 10)  # keys out of canonical order
    with pytest.raises(IntegrityError):
        cbor.decode(bytes.fromhex("f93c00"), 10)  # float
    with pytest.raises(IntegrityError):
        cbor.decode(bytes.fromhex("c11a514b67b0"), 10)  # tag 1 (datetime)
    with pytest.raises(IntegrityError):
        cbor.decode(cbor.encode(b"x" * 100), 50)
    with pytest.raises(IntegrityError):
        cbor.decode(b"\x81" * 40 + b"\x00", 100)  # nested too deeply
