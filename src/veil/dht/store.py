"""Records a node keeps for others, with expiry and limits, and the schedule on which a node
republishes the records it authored.

Records arrive already verified (veil.dht.records). Limits bound what any one key or any one
author can occupy, so a flood of valid records from one key pair fills its own quota and
nothing else: at most ``per_key`` providers per storage index, ``per_author`` records per
author, ``max_records`` in total. A newer record (later expiry) from the same author for the
same key replaces the older one.
Imports from: veil.dht.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from veil.dht.records import NodeRecord, ProviderRecord


@dataclass(frozen=True, slots=True)
class StoreLimits:
    per_key: int = 64
    per_author: int = 16_384  # in a network of <= k nodes every node keeps every record of every node
    max_records: int = 200_000


class RecordStore:
    """Provider records by storage index, node records by node id; expired ones are dropped lazily
    on read and wholesale by ``expire``."""

    def __init__(self, limits: StoreLimits | None = None) -> None:
        self.limits = limits or StoreLimits()
        self._providers: dict[bytes, dict[bytes, ProviderRecord]] = {}
        self._nodes: dict[bytes, NodeRecord] = {}
        self._per_author: dict[bytes, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add_provider(self, rec: ProviderRecord, now: float) -> bool:
        """Keep ``rec``; False if a limit refuses it or a fresher record is already held."""
        if rec.expires <= now:
            return False
        held = self._providers.get(rec.key)
        old = held.get(rec.provider_id) if held else None
        if old is not None:
            if old.expires >= rec.expires:
                return old.raw == rec.raw
            assert held is not None
            held[rec.provider_id] = rec
            return True
        if held is not None and len(held) >= self.limits.per_key:
            self._expire_key(rec.key, now)
            held = self._providers.get(rec.key)
            if held is not None and len(held) >= self.limits.per_key:
                return False
        if not self._room_for(rec.provider_id):
            return False
        self._providers.setdefault(rec.key, {})[rec.provider_id] = rec
        self._count_in(rec.provider_id)
        return True

    def providers(self, key: bytes, now: float, limit: int) -> list[ProviderRecord]:
        """Live provider records for ``key``, the longest-lived first."""
        self._expire_key(key, now)
        held = self._providers.get(key)
        if not held:
            return []
        return sorted(held.values(), key=lambda r: -r.expires)[:limit]

    def put_node_record(self, rec: NodeRecord, now: float) -> bool:
        if rec.expires <= now:
            return False
        old = self._nodes.get(rec.node_id)
        if old is not None and old.expires > now:
            if old.expires >= rec.expires:
                return old.raw == rec.raw
            self._nodes[rec.node_id] = rec
            return True
        if old is not None:
            del self._nodes[rec.node_id]
            self._count_out(old.node_id)
        if not self._room_for(rec.node_id):
            return False
        self._nodes[rec.node_id] = rec
        self._count_in(rec.node_id)
        return True

    def node_record(self, nid: bytes, now: float) -> NodeRecord | None:
        rec = self._nodes.get(nid)
        if rec is not None and rec.expires <= now:
            del self._nodes[nid]
            self._count_out(nid)
            return None
        return rec

    def expire(self, now: float) -> int:
        """Drop every expired record; returns how many went."""
        before = self._count
        for key in list(self._providers):
            self._expire_key(key, now)
        for nid, rec in list(self._nodes.items()):
            if rec.expires <= now:
                del self._nodes[nid]
                self._count_out(nid)
        return before - self._count

    def _expire_key(self, key: bytes, now: float) -> None:
        held = self._providers.get(key)
        if not held:
            return
        for pid, rec in list(held.items()):
            if rec.expires <= now:
                del held[pid]
                self._count_out(pid)
        if not held:
            del self._providers[key]

    def _room_for(self, author: bytes) -> bool:
        return self._count < self.limits.max_records and self._per_author.get(author, 0) < self.limits.per_author

    def _count_in(self, author: bytes) -> None:
        self._count += 1
        self._per_author[author] = self._per_author.get(author, 0) + 1

    def _count_out(self, author: bytes) -> None:
        self._count -= 1
        n = self._per_author[author] - 1
        if n:
            self._per_author[author] = n
        else:
            del self._per_author[author]


class RepublishSchedule:
    """When each key a node authored is next due for republishing (every ``interval`` seconds,
    well inside the record lifetime so a record is never allowed to lapse)."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._due: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def __contains__(self, key: bytes) -> bool:
        return key in self._due

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: bytes, published_at: float) -> None:
        """``key`` was just published; it is due again one interval later."""
        at = published_at + self.interval
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))

    def remove(self, key: bytes) -> None:
        self._due.pop(key, None)

    def due(self, now: float) -> list[bytes]:
        """Keys due by ``now``, each rescheduled one interval from ``now``."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self._due.get(key) != at:
                continue  # removed or rescheduled since
            out.append(key)
        for key in out:
            self.add(key, now)
        return out

    def next_due(self) -> float | None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
