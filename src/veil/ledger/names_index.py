"""The names tree as of the chain's head, and the few before it: what a block producer (or a
replayer) puts in ``roots["names"]``, and what a validator proves lookups against. Pure.

Each block that changes names builds a new tree (O(names): n leaf hashes are kept, n - 1 inner
hashes recomputed); blocks that change none reuse the last. The trees of the last
``KEEP`` distinct roots stay in memory, so a lookup can be proved against the newest *final*
block while a newer one still waits for its signatures.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from veil.ledger.names import NameRec, name_key
from veil.ledger.names_tree import NameTree
from veil.ledger.state import Overlay

KEEP = 16


class NameIndex:
    def __init__(self, records: Iterable[tuple[str, NameRec]]) -> None:
        self.tree = NameTree({name_key(n): r.record_hash for n, r in records})
        # root -> (tree, the records its block replaced: name -> encoded record before it, or None)
        self._trees: OrderedDict[bytes, tuple[NameTree, dict[str, bytes | None]]] = OrderedDict(
            {self.tree.root: (self.tree, {})})

    @property
    def root(self) -> bytes:
        return self.tree.root

    def preview(self, ov: Overlay) -> NameTree:
        """The tree once ``ov`` is committed (the current one when it changes no name)."""
        if not ov.names:
            return self.tree
        return self.tree.updated({name_key(n): None if r is None else r.record_hash for n, r in ov.names.items()})

    def advance(self, tree: NameTree, undo: dict[str, bytes | None]) -> None:
        """``tree`` is the head's now (call after the block is committed); ``undo`` holds the
        records the block changed as they were before it."""
        if tree is self.tree:
            return
        self.tree = tree
        self._trees.pop(tree.root, None)  # a root seen before (a change undone): its undo starts here
        self._trees[tree.root] = (tree, undo)
        while len(self._trees) > KEEP:
            self._trees.popitem(last=False)

    def at(self, root: bytes) -> NameTree | None:
        got = self._trees.get(root)
        return None if got is None else got[0]

    def record_at(self, root: bytes, name: str, now: bytes | None) -> bytes | None:
        """The record of ``name`` in the tree ``root``, given its record at the head (``now``)."""
        value = now
        for r in reversed(self._trees):
            if r == root:
                return value
            undo = self._trees[r][1]
            if name in undo:
                value = undo[name]
        raise KeyError(root)
