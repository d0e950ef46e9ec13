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
    """An immutable tree over ``leaves`` (key -> record hash). Inner hashes are cached by their
    position (depth, path prefix), which no insertion or deletion elsewhere changes, so
    ``updated`` recomputes only the paths of the keys that changed (and re-sorts the keys)."""

    __slots__ = ("_ints", "_memo", "keys", "root", "vals")

    def __init__(self, leaves: Mapping[bytes, bytes]) -> None:
        self.keys = sorted(leaves)
        self.vals = [leaves[k] for k in self.keys]
        self._ints = [int.from_bytes(k, "big") for k in self.keys]
        self._memo: dict[tuple[int, int], bytes] = {}
        self.root = self._hash(0, len(self.keys), 0)

    def __len__(self) -> int:
        return len(self.keys)

    def _split(self, lo: int, hi: int, depth: int) -> int:
        """The first index in [lo, hi) whose key has bit ``depth`` set (the keys there share the
        bits above ``depth``, so they are sorted by it)."""
        shift = KEY_BITS - 1 - depth
        probe = ((self._ints[lo] >> shift) | 1) << shift
        return bisect_left(self._ints, probe, lo, hi)

    def _hash(self, lo: int, hi: int, depth: int) -> bytes:
        n = hi - lo
        if n == 0:
            return EMPTY
        if n == 1:
            return leaf_hash(self.keys[lo], self.vals[lo])
        at = (depth, self._ints[lo] >> (KEY_BITS - depth))
        got = self._memo.get(at)
        if got is not None:
            return got
        mid = self._split(lo, hi, depth)
        h = node_hash(self._hash(lo, mid, depth + 1), self._hash(mid, hi, depth + 1))
        self._memo[at] = h
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
        """A new tree with ``changes`` applied (None deletes a key); this one stays as it was.
        Costs copies of the key list and the cache (fast, in C) and the changed paths' hashes."""
        t = NameTree.__new__(NameTree)
        t.keys, t.vals, t._ints, t._memo = list(self.keys), list(self.vals), list(self._ints), dict(self._memo)
        for k, v in changes.items():
            x = int.from_bytes(k, "big")
            i = bisect_left(t._ints, x)
            here = i < len(t._ints) and t._ints[i] == x
            if v is None:
                if here:
                    del t.keys[i], t.vals[i], t._ints[i]
            elif here:
                t.vals[i] = v
            else:
                t.keys.insert(i, k)
                t.vals.insert(i, v)
                t._ints.insert(i, x)
            for d in range(KEY_BITS + 1):  # every subtree on k's path holds another set now
                t._memo.pop((d, x >> (KEY_BITS - d)), None)
        t.root = t._hash(0, len(t.keys), 0)
        return t


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
