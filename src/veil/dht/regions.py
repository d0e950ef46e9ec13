"""A short-lived memory of which nodes are nearest a keyspace region.

The region of a key is its top ``bits`` bits (veil.dht.batch.region_bits: sized to hold about
k/2 nodes; 0 bits while the network has no more than k nodes, when every lookup finds the same
nodes). After a lookup near a key, the nodes it found are kept for ``ttl`` seconds, so the next
announce batch (node) or placement question (client) in that region asks nobody: storing many
small files costs a lookup per region per ``ttl``, not one per file. The answer for a key is
the k remembered nodes nearest it. A node that left meanwhile fails its request (and is
replaced, by placement or by the next republish); one that joined is seen after ``ttl``.

Pure; time is passed in. Imports from: veil.dht.
"""

from __future__ import annotations

from collections.abc import Sequence

from veil.dht.ids import ID_BITS, Contact, to_int

MAX_REGIONS = 4096


class RegionCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._held: dict[tuple[int, int], tuple[float, tuple[Contact, ...]]] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _region(key: bytes, bits: int) -> tuple[int, int]:
        return bits, (to_int(key) >> (ID_BITS - bits) if bits else 0)

    def get(self, key: bytes, bits: int, now: float) -> list[Contact] | None:
        """The nodes remembered for ``key``'s region, nearest ``key`` first; None when the
        region is not fresh."""
        held = self._held.get(self._region(key, bits))
        if held is None or now - held[0] >= self.ttl or not held[1]:
            self.misses += 1
            return None
        self.hits += 1
        target = to_int(key)
        return sorted(held[1], key=lambda c: c.key ^ target)

    def put(self, key: bytes, bits: int, contacts: Sequence[Contact], now: float) -> None:
        if len(self._held) >= MAX_REGIONS:
            self._held = {r: v for r, v in self._held.items() if now - v[0] < self.ttl}
            if len(self._held) >= MAX_REGIONS:
                self._held.clear()
        self._held[self._region(key, bits)] = (now, tuple(contacts))

    def forget(self, node_id: bytes) -> None:
        """Drop a node that stopped answering from every region."""
        self._held = {r: (t, tuple(c for c in cs if c.node_id != node_id)) for r, (t, cs) in self._held.items()}
