"""Reading and writing one mutable slot on n nodes: which version is current, and compare-and-swap
with retries (pure state machines; the client drives the requests).

docs/specs/folders.md, "Versions, reads and writes". Terms:

- a node's *current* version is the record it holds with the highest sequence number;
- a version is *settled* when at least ``happy`` of the slot's n nodes hold it (``happy > n/2``,
  so at most one version is settled at a time);
- a write *succeeds* when its record is held by at least ``happy`` nodes.

Reads take the highest valid version (seq, then holders, then hash) among at least
``n - happy + 1`` replies, so they meet at least one holder of the last successful write.

A write is compare-and-swap on every node: ``PUT`` with the checkstring (seq, hash) of the version
it is based on; a node holding anything else answers 409 with its current record. On a lost race
the machine picks a new base, but only one it can justify: the settled version if the replies
show one, otherwise the highest version once every node has answered (then no version is
settled, so none holds a reported success). With any node silent and nothing settled it stops
(UnavailableError) instead of guessing. After a justified base, each node is asked to swap the
version it reported; so a successful version is only ever replaced by one built on it.

    WRITING --feed: >= happy hold mine--> DONE
    WRITING --feed: lost, base justified--> REBASING --attempt()--> WRITING
    WRITING --feed: unjustifiable / too many attempts--> FAILED (raises)

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from veil.errors import IntegrityError, UnavailableError, WriteConflictError
from veil.format.mutable import Checkstring, SlotRecord, parse_record

MAX_ATTEMPTS = 8


def check_quorum(n: int, happy: int) -> None:
    if not 0 < n // 2 < happy <= n and not (n == happy == 1):
        raise ValueError(f"happy ({happy}) must be more than half of n ({n}) and at most n")


def read_count(n: int, happy: int, k: int) -> int:
    """How many nodes a reader asks at least: more than k, and enough to meet the last write."""
    return min(n, max(k + 1, n - happy + 1))


@dataclass(frozen=True)
class Latest:
    record: SlotRecord | None  # None: no node holds a valid version
    holders: tuple[int, ...]  # replies (by index) holding it
    stale: tuple[int, ...]  # replies holding an older or losing version, or nothing
    invalid: tuple[int, ...]  # replies that were not a valid record of this slot


def pick_latest(replies: Sequence[bytes | None], slot: bytes) -> Latest:
    """The version a reader believes among ``replies`` (raw records, None for "holds nothing").
    A forged or garbled reply is counted as invalid and otherwise ignored."""
    recs: dict[int, SlotRecord] = {}
    invalid = []
    for i, raw in enumerate(replies):
        if raw is None:
            continue
        try:
            recs[i] = parse_record(raw, slot)
        except IntegrityError:
            invalid.append(i)
    if not recs:
        return Latest(None, (), tuple(i for i, r in enumerate(replies) if r is None), tuple(invalid))
    counts = Counter(r.checkstring for r in recs.values())
    best = max(recs.values(), key=lambda r: (r.seq, counts[r.checkstring], r.hash))
    holders = tuple(i for i, r in recs.items() if r.checkstring == best.checkstring)
    stale = tuple(i for i in range(len(replies)) if i not in holders and i not in invalid)
    return Latest(best, holders, stale, tuple(invalid))


@dataclass(frozen=True)
class Accepted:
    """The node now holds the proposed record (200)."""


@dataclass(frozen=True)
class Holds:
    """The node refused (409) and holds this record (None: nothing)."""

    record: SlotRecord | None


@dataclass(frozen=True)
class Silent:
    """The node did not answer, or answered with something that is not a valid record."""


Reply = Accepted | Holds | Silent


@dataclass(frozen=True)
class Attempt:
    seq: int  # sign the new version with this sequence number
    base: SlotRecord | None  # apply the operations to this version's listing
    expects: Mapping[int, Checkstring | None]  # node index -> the checkstring to send it


@dataclass(frozen=True)
class Done:
    record: Checkstring
    holders: int


class CasWrite:
    """One logical change to one slot on nodes 0..n-1, based first on ``base`` (what a read found)."""

    def __init__(self, n: int, happy: int, base: SlotRecord | None, max_attempts: int = MAX_ATTEMPTS) -> None:
        check_quorum(n, happy)
        self.n, self.happy, self.max_attempts = n, happy, max_attempts
        self.base = base
        self.attempts = 0
        self.state = "rebasing"
        # What each node was last seen to hold; None = nothing. Missing = never heard from.
        self.current: dict[int, Checkstring | None] = {}
        self._justified = False  # first attempt: base comes from a read, not from a census
        self._seen_seq = base.seq if base is not None else 0

    def attempt(self) -> Attempt:
        if self.state != "rebasing":
            raise RuntimeError(f"attempt() in state {self.state}")
        self.attempts += 1
        self.state = "writing"
        base_cs = self.base.checkstring if self.base is not None else None
        expects = {i: (self.current[i] if self._justified and i in self.current else base_cs) for i in range(self.n)}
        return Attempt(self._seen_seq + 1, self.base, expects)

    def feed(self, mine: Checkstring, replies: Mapping[int, Reply]) -> Done | Attempt:
        """The nodes' answers to the record ``mine``; Done, or the next Attempt (the caller applies
        its operations to ``attempt.base``, signs, and sends again, best after ``backoff``)."""
        if self.state != "writing":
            raise RuntimeError(f"feed() in state {self.state}")
        records: dict[Checkstring, SlotRecord] = {} if self.base is None else {self.base.checkstring: self.base}
        answered = set()
        for i, r in replies.items():
            if isinstance(r, Accepted):
                self.current[i] = mine
                answered.add(i)
            elif isinstance(r, Holds):
                answered.add(i)
                self.current[i] = r.record.checkstring if r.record is not None else None
                if r.record is not None:
                    records[r.record.checkstring] = r.record
                    self._seen_seq = max(self._seen_seq, r.record.seq)
        self._seen_seq = max(self._seen_seq, mine.seq)
        counts = Counter(cs for cs in self.current.values() if cs is not None)
        if counts[mine] >= self.happy:
            self.state = "done"
            return Done(mine, counts[mine])
        if len(answered) < self.happy:
            self.state = "failed"
            raise UnavailableError(f"only {len(answered)} of {self.n} nodes answered; {self.happy} are needed to write")
        if self.attempts >= self.max_attempts:
            self.state = "failed"
            raise WriteConflictError(f"the folder is busy: {self.attempts} attempts lost a race with other writers; "
                                     "nothing was saved, try again")
        settled = [cs for cs, c in counts.items() if c >= self.happy]
        choice: Checkstring | None
        if settled:
            choice = settled[0]
        elif len(answered) == self.n:
            choice = max(counts, key=lambda cs: (cs.seq, counts[cs], cs.hash)) if counts else None
        else:
            self.state = "failed"
            raise UnavailableError("cannot tell which version of the folder is current: "
                                   f"no version is on {self.happy} nodes and {self.n - len(answered)} did not answer")
        # choice == mine: the highest, but not settled. Keep the base: the caller's operations
        # re-applied to it give the same content, written again above every competitor.
        if choice != mine:
            self.base = records[choice] if choice is not None else None
        self._justified = True
        self.state = "rebasing"
        return self.attempt()


def backoff(attempt: int, rng: random.Random, unit: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before attempt ``attempt`` (2, 3, ...): full jitter, so racers spread out."""
    return rng.uniform(0, min(cap, unit * 2 ** (attempt - 1)))
