"""When the repairer looks at which file: the sans-I/O scheduling core of the repairer role.

For every file this node stores a share of it remembers who the file's repair *leader* is,
as this node last learnt it, and, for the files this node leads, which nodes claimed shares.
Work comes from two places (docs/specs/repair.md, "Automatic repair"):

- **triggers**: a peer that left or stopped answering (an eviction from the DHT routing table,
  a failed liveness probe, a failed request) makes every file it led or held due at once;
- **the sweep**, the safety net: a file comes up again ``interval`` seconds after its last
  visit, new files first, but never more than ``rate`` visits a minute (a token bucket), so
  its cost per node is bounded whatever the node stores.

Files are opaque byte keys here (the repairer uses storage index + manifest hash: one slot).
No I/O and no clock of its own: callers pass ``now`` (seconds, monotonic). Not thread-safe;
the repairer role drives it from one thread.

Imports from: nothing of Veil's.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

NEW, SWEEP, DEPARTED = "new", "sweep", "departed"
MAX_DEPARTED = 4096
MAX_RETRIES = 5  # a triggered visit that fails is retried (1, 2, 4, 8, 16 s later), then left to the sweep


@dataclass
class FileState:
    leader: bytes | None = None  # None: not learnt yet
    holders: frozenset[bytes] = frozenset()  # claimed holders, when this node led the file
    due: float = 0.0  # next sweep visit
    predicted: bool = False  # leader and holders guessed from placement, not confirmed by a visit
    retries: int = 0  # triggered visits of this file that failed in a row


@dataclass(frozen=True)
class Visit:
    key: bytes  # the file: its storage index and manifest hash (the repairer's choice; opaque here)
    reason: str  # NEW, SWEEP or DEPARTED
    state: FileState


@dataclass
class ScheduleStats:
    sweep_visits: int = 0
    triggered_visits: int = 0
    departures: int = 0


@dataclass
class RepairSchedule:
    own_id: bytes
    interval: float  # seconds between two sweep visits of one file (at least)
    rate: float  # sweep visits per minute (at most)
    now: float
    departed_ttl: float = 600.0  # how long a departed peer is passed over as leader
    files: dict[bytes, FileState] = field(default_factory=dict)
    stats: ScheduleStats = field(default_factory=ScheduleStats)

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.rate <= 0:
            raise ValueError("the sweep needs a positive interval and rate")
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._triggered: OrderedDict[bytes, None] = OrderedDict()
        self._retry: list[tuple[float, int, bytes]] = []
        self._departed: OrderedDict[bytes, float] = OrderedDict()
        self.burst = max(1.0, self.rate / 12)  # at most five seconds' worth at once
        self._tokens = 1.0
        self._last = self.now
        self.leading = 0  # files whose leader is this node (kept up to date: status reads it)

    # -- what the node holds ----------------------------------------------------------------

    def sync(self, held: Iterable[bytes], now: float) -> int:
        """The storage indexes the node holds now: new ones are due at once, gone ones dropped.
        Returns how many are new."""
        held = set(held)
        for si in [s for s in self.files if s not in held]:
            if self.files.pop(si).leader == self.own_id:
                self.leading -= 1
            self._triggered.pop(si, None)
        new = 0
        for si in held:
            if si not in self.files:
                self.files[si] = FileState(due=now)
                self._push(si, now)
                new += 1
        return new

    def queued(self, now: float) -> int:
        """Files waiting for a visit now: triggered by a departure, due for a retry, or due in
        the sweep (the repair queue of the node's metrics)."""
        # Copies first (C-level, under the GIL): status() runs on another thread than the repairer.
        triggered, retry, files = list(self._triggered), list(self._retry), list(self.files.items())
        waiting = set(triggered) | {si for t, _, si in retry if t <= now}
        return len(waiting | {si for si, st in files if st.due <= now})

    def _push(self, si: bytes, due: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, si))

    # -- what the node learnt ---------------------------------------------------------------

    def learnt(self, si: bytes, leader: bytes | None, holders: Iterable[bytes] | None, now: float) -> None:
        """The outcome of a visit: the leader as now known (and, if this node leads, the holders)."""
        st = self.files.get(si)
        if st is None:
            return
        self.leading += (leader == self.own_id) - (st.leader == self.own_id)
        st.leader = leader
        st.predicted = False
        st.retries = 0
        st.holders = frozenset(holders) if holders is not None and leader == self.own_id else frozenset()
        st.due = now + self.interval
        self._push(si, st.due)

    def predicted(self, si: bytes, leader: bytes, holders: Iterable[bytes]) -> None:
        """A guess at a new file's leader and holders (placement order, no network): departures
        trigger its checks from now on, while the file stays due for its first, confirming visit."""
        st = self.files.get(si)
        if st is None or st.leader is not None:
            return
        self.leading += leader == self.own_id
        st.leader = leader
        st.holders = frozenset(holders) if leader == self.own_id else frozenset()
        st.predicted = True

    def departed(self, node_id: bytes, now: float) -> int:
        """A peer left or stopped answering: every file it led or held is due now. Returns how many."""
        if node_id == self.own_id:
            return 0
        self._departed.pop(node_id, None)
        self._departed[node_id] = now
        while len(self._departed) > MAX_DEPARTED:
            self._departed.popitem(last=False)
        self.stats.departures += 1
        hit = 0
        for si, st in self.files.items():
            if st.leader == node_id or node_id in st.holders:
                if si not in self._triggered:
                    self._triggered[si] = None
                    hit += 1
        return hit

    def answered(self, node_id: bytes) -> None:
        """A peer answered: it is no longer passed over."""
        self._departed.pop(node_id, None)

    def is_departed(self, node_id: bytes, now: float) -> bool:
        t = self._departed.get(node_id)
        if t is None:
            return False
        if now - t > self.departed_ttl:
            del self._departed[node_id]
            return False
        return True

    def peers(self) -> set[bytes]:
        """The nodes this node's files depend on: their leaders, and the holders of the files it leads."""
        out: set[bytes] = set()
        for st in self.files.values():
            if st.leader is not None:
                out.add(st.leader)
            out |= st.holders
        out.discard(self.own_id)
        return out

    # -- what to do next --------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate / 60)
        self._last = now

    def next(self, now: float) -> Visit | None:
        """The next file to visit, or None when nothing is due (or the sweep's budget is spent)."""
        while self._triggered:
            si, _ = self._triggered.popitem(last=False)
            st = self.files.get(si)
            if st is not None:
                self.stats.triggered_visits += 1
                return Visit(si, DEPARTED, st)
        while self._retry and self._retry[0][0] <= now:
            _, _, si = heapq.heappop(self._retry)
            st = self.files.get(si)
            if st is not None:
                self.stats.triggered_visits += 1
                return Visit(si, DEPARTED, st)
        self._refill(now)
        while self._heap and self._tokens >= 1:
            due, _, si = self._heap[0]
            st = self.files.get(si)
            if st is None or st.due != due:  # dropped, or rescheduled since: a stale entry
                heapq.heappop(self._heap)
                continue
            if due > now:
                return None
            heapq.heappop(self._heap)
            self._tokens -= 1
            self.stats.sweep_visits += 1
            st.due = float("inf")  # until learnt() reschedules it
            return Visit(si, NEW if st.leader is None or st.predicted else SWEEP, st)
        return None

    def requeue(self, visit: Visit, now: float, delay: float) -> None:
        """A visit could not finish (an error). A triggered one is retried outside the sweep's
        budget with growing pauses, MAX_RETRIES times; a sweep visit comes up after ``delay``."""
        st = self.files.get(visit.key)
        if st is None:
            return
        if visit.reason == DEPARTED and st.retries < MAX_RETRIES:
            self._seq += 1
            heapq.heappush(self._retry, (now + 2.0**st.retries, self._seq, visit.key))
            st.retries += 1
            if st.due == float("inf"):
                st.due = now + delay
                self._push(visit.key, st.due)
            return
        st.retries = 0
        st.due = now + delay
        self._push(visit.key, st.due)

    def wait_hint(self, now: float) -> float:
        """Seconds until ``next`` may have something (0: now; capped at ``interval``)."""
        if self._triggered:
            return 0.0
        retry = self._retry[0][0] - now if self._retry else float("inf")
        while self._heap:
            due, _, si = self._heap[0]
            st = self.files.get(si)
            if st is None or st.due != due:
                heapq.heappop(self._heap)
                continue
            self._refill(now)
            budget = 0.0 if self._tokens >= 1 else (1 - self._tokens) * 60 / self.rate
            return max(0.0, min(self.interval, retry, max(due - now, budget)))
        return max(0.0, min(self.interval, retry))
