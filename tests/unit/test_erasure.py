from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.erasure import Codec
from veil.errors import IntegrityError


@given(st.integers(1, 8), st.integers(0, 8), st.binary(min_size=0, max_size=3000), st.randoms(use_true_random=False))
def test_any_k_of_n_decode(k: int, extra: int, data: bytes, rnd: object) -> None:
    n = k + extra
    c = Codec(k, n)
    blocks = c.encode(data)
    assert len(blocks) == n and len({len(b) for b in blocks}) == 1
    assert len(blocks[0]) == c.block_size(len(data))
    chosen = rnd.sample(range(n), k)  # type: ignore[attr-defined]
    assert c.decode({i: blocks[i] for i in chosen}) == data


def test_every_3_of_10_subset() -> None:
    c = Codec(3, 10)
    data = bytes(range(256)) * 40
    blocks = c.encode(data)
    for comb in itertools.combinations(range(10), 3):
        assert c.decode({i: blocks[i] for i in comb}) == data


def test_encoding_is_deterministic_and_bad_input_refused() -> None:
    c = Codec(3, 10)
    assert c.encode(b"x" * 1000) == c.encode(b"x" * 1000)
    blocks = c.encode(b"x" * 1000)
    with pytest.raises(IntegrityError):
        c.decode({0: blocks[0], 1: blocks[1]})
    with pytest.raises(IntegrityError):
        c.decode({0: blocks[1], 1: blocks[0], 2: blocks[2]})  # blocks under the wrong index
    with pytest.raises(IntegrityError):
        Codec(0, 3)
    with pytest.raises(IntegrityError):
        Codec(3, 10, "zfec/v9")
