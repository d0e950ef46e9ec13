"""Where a file's shares live: rendezvous hashing (Tahoe's permuted ring).

Nodes are ordered by H("veil/placement/v1", storage index || node id); share i goes to
the i-th node of that order, so any downloader knows whom to ask without a directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash

_h = TaggedHash(labels.PLACEMENT)

T = TypeVar("T")


def permuted(si: bytes, node_ids: Sequence[bytes]) -> list[int]:
    """Indices into ``node_ids`` in the placement order for storage index ``si``."""
    return sorted(range(len(node_ids)), key=lambda i: _h(si, node_ids[i]))
