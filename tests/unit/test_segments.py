from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError, WrongKeyError
from veil.format.segments import SegmentCipher, open_metadata, seal_metadata

KEY = bytes(range(32))


def seal(cipher: SegmentCipher, i: int, p: bytes) -> bytes:
    out = bytearray(len(p) + 16)
    cipher.seal_into(i, p, out)
    return bytes(out)


def opened(cipher: SegmentCipher, i: int, ct: bytes) -> bytes:
    out = bytearray(len(ct) - 16)
    cipher.open_into(i, ct, out)
    return bytes(out)


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=5))
def test_roundtrip(parts: list[bytes]) -> None:
    c = SegmentCipher(KEY, len(parts))
    for i, p in enumerate(parts):
        assert opened(c, i, seal(c, i, p)) == p


def test_reorder_truncate_extend_detected() -> None:
    c3 = SegmentCipher(KEY, 3)
    segs = [seal(c3, i, bytes([i]) * 10) for i in range(3)]
    with pytest.raises(IntegrityError):
        opened(c3, 0, segs[1])  # reordered
    c2 = SegmentCipher(KEY, 2)
    with pytest.raises(IntegrityError):
        opened(c2, 1, segs[1])  # truncated: segment 1 was not sealed as last
    c4 = SegmentCipher(KEY, 4)
    with pytest.raises(IntegrityError):
        opened(c4, 2, segs[2])  # extended: segment 2 was sealed as last


def test_every_byte_of_a_sealed_segment_is_authenticated() -> None:
    c = SegmentCipher(KEY, 1)
    ct = seal(c, 0, b"hello world, this is veil")
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            opened(c, 0, bytes(bad))
    with pytest.raises(IntegrityError):
        opened(SegmentCipher(bytes(32), 1), 0, ct)


def test_metadata_roundtrip_padding_and_tamper() -> None:
    meta = {"name": "ä.txt", "type": "text/plain", "size": 3}
    sealed = seal_metadata(KEY, meta)
    assert len(sealed) % 128 == 16
    assert open_metadata(KEY, sealed) == meta
    for i in range(len(sealed)):
        bad = bytearray(sealed)
        bad[i] ^= 0x80
        with pytest.raises(IntegrityError):
            open_metadata(KEY, bytes(bad))
    with pytest.raises(WrongKeyError):
        open_metadata(bytes(32), sealed)
