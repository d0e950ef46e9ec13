"""Where a file's shares live: rendezvous hashing (Tahoe's permuted ring).

Nodes are ordered by H("veil/placement/v1", storage index || node id); share i goes to
the i-th node of that order, so any downloader knows whom to ask without a directory
(protocol/family.py then moves nodes of families already used behind the fresh ones).
In the DHT a file is found under ``dht_key(si)`` = H("veil/dht-storage-key/v1", si), a
256-bit key like a node id: its candidates are the nodes nearest that key, and its
provider records are stored there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash

_h = TaggedHash(labels.PLACEMENT)
_dht = TaggedHash(labels.DHT_STORAGE_KEY)

T = TypeVar("T")


def placement_hash(si: bytes, key: bytes) -> bytes:
    """The rendezvous hash ranking ``key`` (a node id; protocol/family.py: a family) for ``si``."""
    return _h(si, key)


def permuted(si: bytes, node_ids: Sequence[bytes]) -> list[int]:
    """Indices into ``node_ids`` in the placement order for storage index ``si``."""
    return sorted(range(len(node_ids)), key=lambda i: _h(si, node_ids[i]))


def relay_directory_key() -> bytes:
    """The DHT key under which relays store their signed provider records (docs/specs/circuits.md)."""
    return TaggedHash(labels.DHT_RELAY_DIRECTORY)(b"")


def dht_key(si: bytes) -> bytes:
    """The DHT key (256 bits, like a node id) under which storage index ``si`` is found."""
    return _dht(si)
