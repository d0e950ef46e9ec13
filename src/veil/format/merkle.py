"""Binary Merkle trees of the RFC 6962 shape (split at the largest power of two below n),
with tagged leaf and node hashes and compact proofs for any contiguous range of leaves.

A range proof lists, in depth-first left-to-right order, the roots of the maximal subtrees
that lie wholly outside the range; the verifier walks the same recursion. Such a proof has
O(log n) hashes for one leaf or a whole range alike.

``Levels`` stores every *perfect* aligned subtree hash (level j holds the hashes of leaves
[i*2^j, (i+1)*2^j)), which is all a prover needs: every left child in this tree shape is a
perfect aligned subtree, and the few right-spine nodes are recomputed in O(log n).
"""

from __future__ import annotations

from collections.abc import Sequence

from veil.crypto.hashes import DIGEST_SIZE, TaggedHash
from veil.errors import IntegrityError


class TreeHasher:
    """The leaf and node hash functions of one kind of tree."""

    __slots__ = ("leaf", "node")

    def __init__(self, leaf_label: bytes, node_label: bytes) -> None:
        self.leaf = TaggedHash(leaf_label)
        self.node = TaggedHash(node_label)


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaves(h: TreeHasher, leaves: Sequence[bytes]) -> bytes:
    """Root from leaf hashes. A tree must have at least one leaf."""
    return Levels.build(h, leaves).root()


class Levels:
    """All perfect aligned subtree hashes of a tree, built from its leaf hashes."""

    def __init__(self, h: TreeHasher, levels: list[list[bytes]], n: int) -> None:
        self.h = h
        self.levels = levels
        self.n = n

    @classmethod
    def build(cls, h: TreeHasher, leaves: Sequence[bytes]) -> Levels:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            prev = levels[-1]
            levels.append([h.node(prev[2 * i], prev[2 * i + 1]) for i in range(len(prev) // 2)])
        return cls(h, levels, len(leaves))

    def to_bytes(self) -> bytes:
        return b"".join(b"".join(lv) for lv in self.levels)

    @classmethod
    def from_bytes(cls, h: TreeHasher, data: bytes, n: int) -> Levels:
        levels: list[list[bytes]] = []
        off = 0
        size = n
        while True:
            lv = [data[off + i * DIGEST_SIZE : off + (i + 1) * DIGEST_SIZE] for i in range(size)]
            off += size * DIGEST_SIZE
            levels.append(lv)
            if size <= 1:
                break
            size //= 2
        if off != len(data):
            raise IntegrityError("stored Merkle tree has the wrong size")
        return cls(h, levels, n)

    @staticmethod
    def stored_size(n: int) -> int:
        total, size = 0, n
        while True:
            total += size
            if size <= 1:
                break
            size //= 2
        return total * DIGEST_SIZE

    def subtree(self, lo: int, hi: int) -> bytes:
        width = hi - lo
        if width & (width - 1) == 0 and lo % width == 0:
            return self.levels[width.bit_length() - 1][lo // width]
        k = _split(width)
        return self.h.node(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self) -> bytes:
        return self.subtree(0, self.n)

    def range_proof(self, start: int, end: int) -> list[bytes]:
        """Proof for leaves [start, end)."""
        if not 0 <= start < end <= self.n:
            raise ValueError("range outside the tree")
        out: list[bytes] = []

        def walk(lo: int, hi: int) -> None:
            if hi <= start or lo >= end:
                out.append(self.subtree(lo, hi))
                return
            if hi - lo == 1:
                return
            k = _split(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

        walk(0, self.n)
        return out


def verify_range(
    h: TreeHasher, root: bytes, n: int, start: int, leaves: Sequence[bytes], proof: Sequence[bytes]
) -> None:
    """Raise IntegrityError unless ``leaves`` are leaves [start, start+len) of the tree ``root``."""
    end = start + len(leaves)
    if not leaves or not 0 <= start < end <= n or len(proof) > 2 * 64:
        raise IntegrityError("Merkle proof does not fit the tree")
    pi = 0

    def walk(lo: int, hi: int) -> bytes:
        nonlocal pi
        if hi <= start or lo >= end:
            if pi >= len(proof):
                raise IntegrityError("Merkle proof too short")
            v = proof[pi]
            pi += 1
            return v
        if hi - lo == 1:
            return leaves[lo - start]
        k = _split(hi - lo)
        left = walk(lo, lo + k)
        return h.node(left, walk(lo + k, hi))

    got = walk(0, n)
    if pi != len(proof) or got != root:
        raise IntegrityError("Merkle proof does not match the root")
