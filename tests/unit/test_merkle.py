from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError
from veil.format.merkle import Levels, verify_range
from veil.format.share import BLOCK_TREE as H


def leaves(n: int) -> list[bytes]:
    return [H.leaf(i.to_bytes(4, "big")) for i in range(n)]


def naive_root(ls: list[bytes]) -> bytes:
    if len(ls) == 1:
        return ls[0]
    k = 1 << ((len(ls) - 1).bit_length() - 1)
    return H.node(naive_root(ls[:k]), naive_root(ls[k:]))


@given(st.integers(1, 300), st.data())
def test_range_proofs_verify(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    tree = Levels.build(H, ls)
    assert tree.root() == naive_root(ls)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    proof = tree.range_proof(start, end)
    verify_range(H, tree.root(), n, start, ls[start:end], proof)
    assert Levels.from_bytes(H, tree.to_bytes(), n).root() == tree.root()


@given(st.integers(2, 100), st.data())
def test_tampered_leaf_or_proof_fails(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    tree = Levels.build(H, ls)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    proof = tree.range_proof(start, end)
    bad = list(ls[start:end])
    j = data.draw(st.integers(0, len(bad) - 1))
    bad[j] = H.leaf(b"evil")
    with pytest.raises(IntegrityError):
        verify_range(H, tree.root(), n, start, bad, proof)
    if proof:
        p2 = list(proof)
        i = data.draw(st.integers(0, len(p2) - 1))
        p2[i] = bytes(32)
        with pytest.raises(IntegrityError):
            verify_range(H, tree.root(), n, start, ls[start:end], p2)
        with pytest.raises(IntegrityError):
            verify_range(H, tree.root(), n, start, ls[start:end], proof[:-1])
    # the same leaves claimed at another position fail too
    if start + 1 < n and end < n:
        with pytest.raises(IntegrityError):
            verify_range(H, tree.root(), n, start + 1, ls[start:end], proof)


def test_leaf_and_node_hashes_are_separated() -> None:
    a, b = H.leaf(b"a"), H.leaf(b"b")
    assert H.node(a, b) != H.leaf(a + b)
