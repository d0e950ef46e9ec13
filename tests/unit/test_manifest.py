from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.manifest import MAGIC, Manifest, parse_manifest
from veil.format.segments import segment_count


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    n = draw(st.integers(1, 20))
    k = draw(st.integers(1, n))
    segsize = draw(st.sampled_from([4096, 65536, 1 << 20]))
    size = draw(st.integers(0, 10 * segsize))
    return Manifest(
        si=draw(st.binary(min_size=16, max_size=16)), k=k, n=n, happy=draw(st.integers(k, n)), segsize=segsize,
        size=size, bsize=draw(st.integers(1, 1 << 21)), lbsize=draw(st.integers(1, 1 << 21)),
        roots=tuple(draw(st.binary(min_size=32, max_size=32)) for _ in range(n)),
        segroot=draw(st.binary(min_size=32, max_size=32)), meta=draw(st.binary(max_size=300)),
        payout=draw(st.none() | st.binary(min_size=32, max_size=32)),
    )


@given(manifests())
def test_roundtrip(m: Manifest) -> None:
    data = m.to_bytes()
    assert parse_manifest(data, m.hash()) == m
    assert m.nseg == segment_count(m.size, m.segsize)


@given(manifests(), st.data())
def test_every_byte_is_authenticated(m: Manifest, data: st.DataObject) -> None:
    raw = bytearray(m.to_bytes())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(IntegrityError):
        parse_manifest(bytes(raw), m.hash())


def test_structure_checks_without_hash() -> None:
    good = Manifest(si=bytes(16), k=3, n=10, happy=7, segsize=1 << 20, size=5, bsize=100, lbsize=100,
                    roots=tuple(bytes(32) for _ in range(10)), segroot=bytes(32), meta=b"m")
    raw = good.to_bytes()
    body = cbor.decode(raw[5:], 1 << 16)
    for mutate in (
        lambda b: b.update(k=11),
        lambda b: b.update(nseg=2),
        lambda b: b.update(codec="nope/v1"),
        lambda b: b.update(roots=b["roots"][:9]),
        lambda b: b.update(extra=1),
        lambda b: b.pop("segroot"),
    ):
        b = dict(body)
        mutate(b)
        with pytest.raises(IntegrityError):
            parse_manifest(MAGIC + b"\x01" + cbor.encode(b))
    with pytest.raises(IntegrityError):
        parse_manifest(b"XXXX" + raw[4:])
    with pytest.raises(IntegrityError):
        parse_manifest(raw[:4] + b"\x02" + raw[5:])
    with pytest.raises(IntegrityError):
        parse_manifest(raw + b"\x00" * 70000)
