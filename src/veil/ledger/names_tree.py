"""The names tree: a compact sparse Merkle tree over every name record, whose root each block
header commits to (``roots["names"]``), so a resolver can check one name against a signed block
without trusting the validator that answers (names.md, "Verifiable resolution").

Keys are 256-bit ``name_key(name)``; a leaf is ``H("veil/name-leaf/v1", key || record hash)``.
A subtree's hash is ``EMPTY`` (32 zero bytes) with no leaf, the leaf's hash with exactly one,
and ``H("veil/name-node/v1", left || right)`` otherwise, splitting on the key's bits from the
most significant. The root is therefore a function of the set of records alone (canonical, the
same on every validator whatever the order of writes), a tree of n records has n - 1 inner
nodes, and a proof is about log2(n) sibling hashes.

A proof for a key lists the siblings from the root down to where the key's path ends: at its
own leaf (the name is there), at ``EMPTY`` or at another key's leaf sharing the path so far
(the name is not there). Pure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash

EMPTY = bytes(32)
KEY_BITS = 256
_H_LEAF = TaggedHash(labels.NAME_LEAF)
_H_NODE = TaggedHash(labels.NAME_NODE)


def leaf_hash(key: bytes, record_hash: bytes) -> bytes:
    return _H_LEAF(key, record_hash)


def node_hash(left: bytes, right: bytes) -> bytes:
    return _H_NODE(left, right)


def bit(key: bytes, i: int) -> int:
    return (key[i >> 3] >> (7 - (i & 7))) & 1


class Proof(NamedTuple):
    siblings: tuple[bytes, ...]  # from the root down
    other: tuple[bytes, bytes] | None = None  # (key, record hash) of the leaf ending the path, if not the key's own

    def to_wire(self) -> list[object]:
        return [list(self.siblings), None if self.other is None else list(self.other)]


def root_from(key: bytes, end: bytes, siblings: Sequence[bytes]) -> bytes:
    """The root a path implies: ``end`` (the subtree hash where the path stops) folded up through
    ``siblings`` (root first) along ``key``'s bits."""
    h = end
    for d in range(len(siblings) - 1, -1, -1):
        h = node_hash(siblings[d], h) if bit(key, d) else node_hash(h, siblings[d])
    return h


class NameTree:
    """An immutable tree over ``leaves`` (key -> record hash); inner hashes are computed once."""

    __slots__ = ("_memo", "keys", "root", "vals")

    def __init__(self, leaves: Mapping[bytes, bytes]) -> None:
        self.keys = sorted(leaves)
        self.vals = [leaves[k] for k in self.keys]
        self._memo: dict[tuple[int, int, int], bytes] = {}
        self.root = self._hash(0, len(self.keys), 0)

    def __len__(self) -> int:
        return len(self.keys)

    def _split(self, lo: int, hi: int, depth: int) -> int:
        """The first index in [lo, hi) whose key has bit ``depth`` set (the keys there share the
        bits above ``depth``, so they are sorted by it)."""
        k = self.keys[lo]
        probe = bytearray(k)
        byte, off = depth >> 3, 7 - (depth & 7)
        probe[byte] = (probe[byte] & ~((1 << (off + 1)) - 1) & 0xFF) | (1 << off)
        for j in range(byte + 1, len(probe)):
            probe[j] = 0
        return bisect_left(self.keys, bytes(probe), lo, hi)

    def _hash(self, lo: int, hi: int, depth: int) -> bytes:
        n = hi - lo
        if n == 0:
            return EMPTY
        if n == 1:
            return leaf_hash(self.keys[lo], self.vals[lo])
        got = self._memo.get((lo, hi, depth))
        if got is not None:
            return got
        mid = self._split(lo, hi, depth)
        h = node_hash(self._hash(lo, mid, depth + 1), self._hash(mid, hi, depth + 1))
        self._memo[(lo, hi, depth)] = h
        return h

    def prove(self, key: bytes) -> Proof:
        lo, hi, depth = 0, len(self.keys), 0
        sibs: list[bytes] = []
        while hi - lo > 1:
            mid = self._split(lo, hi, depth)
            if bit(key, depth):
                sibs.append(self._hash(lo, mid, depth + 1))
                lo = mid
            else:
                sibs.append(self._hash(mid, hi, depth + 1))
                hi = mid
            depth += 1
        if hi - lo == 1 and self.keys[lo] != key:
            return Proof(tuple(sibs), (self.keys[lo], self.vals[lo]))
        return Proof(tuple(sibs))

    def updated(self, changes: Mapping[bytes, bytes | None]) -> NameTree:
        """A new tree with ``changes`` applied (None deletes a key)."""
        leaves = dict(zip(self.keys, self.vals, strict=True))
        for k, v in changes.items():
            if v is None:
                leaves.pop(k, None)
            else:
                leaves[k] = v
        return NameTree(leaves)


def check_proof(root: bytes, key: bytes, record_hash: bytes | None, proof: Proof) -> bool:
    """Whether ``proof`` shows ``key`` holding ``record_hash`` (None: holding nothing) under ``root``."""
    sibs = proof.siblings
    if len(sibs) > KEY_BITS or not all(isinstance(s, bytes) and len(s) == 32 for s in sibs):
        return False
    if record_hash is not None:
        if proof.other is not None:
            return False
        end = leaf_hash(key, record_hash)
    elif proof.other is None:
        end = EMPTY
    else:
        okey, orh = proof.other
        if len(okey) != 32 or len(orh) != 32 or okey == key or any(bit(okey, i) != bit(key, i) for i in range(len(sibs))):
            return False
        end = leaf_hash(okey, orh)
    return root_from(key, end, sibs) == root
