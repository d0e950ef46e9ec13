"""Reading and writing one mutable slot on n nodes: which version is current, and compare-and-swap
with retries (pure state machines; the client drives the requests).

docs/specs/folders.md, "Versions, reads and writes". Every record names its parents (format/
mutable.py): the versions whose changes it contains. Terms, over the answers of some nodes:

- the *lineage* of a record is itself and its parents, its *chain* itself and its base chain;
- ``down(v)`` is the number of nodes whose current record has ``v`` on its chain;
- ``v`` is *settled* when ``down(v) >= happy`` (``happy > n/2``);
- a write *succeeds* when ``happy`` nodes accepted its record.

Nodes replace a record only by one that names it as a parent (the writer sends it as the
compare-and-swap ``expect``), so each node's history only ever moves to versions containing what
it held, and any two successful writes share a node: successes form one chain and none is lost.

Settledness is counted along base chains only (``down``: nodes whose record has ``v`` on its base
chain); a successful write is on the base chain of everything later written over it, since only
a writer's own earlier attempts are ever merged in beside the base. Chains are paths, so settled
versions are ordered. Reads (``resolve``) take the highest version whose base chain holds the
highest settled one; the answer is *decided* when that version is itself settled, or at least
``n - happy + 1`` nodes answered and all hold it, or every node answered. Otherwise the reader
asks the other nodes.

A write (``CasWrite``) is built on a decided base; a lost race is re-based on the census its 409
replies give (each carries the node's current record), with the writer's own earlier attempt as a
further parent when the new base contains that attempt's base, and with the census's other heads
offered for merging (``Attempt.heads``, ``merge``), so a crashed writer's orphan does not block
the nodes holding it forever.

    REBASING --attempt()--> WRITING --feed: happy accepted--> DONE
                               |--feed: lost, census decided--> REBASING
                               |--feed: too few answers, undecided, too many attempts--> FAILED (raises)

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from veil.errors import IntegrityError, UnavailableError, WriteConflictError
from veil.format.mutable import MAX_PARENTS, Checkstring, SlotRecord, parse_record

MAX_ATTEMPTS = 8
MAX_CHAIN = 8  # base chain entries a record names (the anchor among them)


def check_quorum(n: int, happy: int) -> None:
    if not 0 < n // 2 < happy <= n and not (n == happy == 1):
        raise ValueError(f"happy ({happy}) must be more than half of n ({n}) and at most n")


def read_count(n: int, happy: int, k: int) -> int:
    """How many nodes a reader asks at least: more than k, and enough to meet the last write."""
    return min(n, max(k + 1, n - happy + 1))


def lineage(rec: SlotRecord) -> set[Checkstring]:
    """Every version whose changes ``rec`` contains (as far as it names them)."""
    return {rec.checkstring, *rec.parents}


def chain(rec: SlotRecord) -> set[Checkstring]:
    """``rec`` and its base chain: one path, so versions settled along chains are ordered."""
    return {rec.checkstring, *rec.chain}


@dataclass(frozen=True)
class Latest:
    record: SlotRecord | None  # None: no node holds a valid version
    decided: bool  # False: ask the nodes not asked yet
    holders: tuple[int, ...]  # nodes (by index) holding it
    stale: tuple[int, ...]  # nodes holding another version, or nothing
    invalid: tuple[int, ...] = ()  # nodes whose answer was not a valid record of this slot
    anchor: Checkstring | None = None  # the highest settled version seen (``record`` descends from it)


def resolve(held: Mapping[int, SlotRecord | None], n: int, happy: int) -> Latest:
    """The current version, from verified answers (node index -> its record, None: holds nothing)."""
    recs = {i: r for i, r in held.items() if r is not None}
    answered = len(held)
    if not recs:
        return Latest(None, answered >= n - happy + 1 or answered == n, (), tuple(held))
    down: Counter[Checkstring] = Counter()
    for r in recs.values():
        down.update(chain(r))
    # Settled versions lie on every holder's base chain, so they are ordered: the highest
    # contains the others, and every successful write is among them.
    settled = [cs for cs, c in down.items() if c >= happy]
    top = max(settled, key=lambda cs: (cs.seq, cs.hash)) if settled else None
    candidates = [r for r in recs.values() if top is None or top in chain(r)]
    best = max(candidates, key=lambda r: (r.seq, down[r.checkstring], r.hash))
    holders = tuple(i for i, r in recs.items() if r.checkstring == best.checkstring)
    stale = tuple(i for i in held if i not in holders)
    decided = (down[best.checkstring] >= happy or answered == n
               or (not stale and answered >= n - happy + 1))
    return Latest(best, decided, holders, stale, (), top)


def pick_latest(replies: Mapping[int, bytes | None], slot: bytes, n: int, happy: int) -> Latest:
    """``resolve`` over raw answers; a forged or garbled answer counts as invalid and is otherwise
    ignored, so a lying node can only hold a version back, never forge or roll one back."""
    held: dict[int, SlotRecord | None] = {}
    invalid = []
    for i, raw in replies.items():
        try:
            held[i] = parse_record(raw, slot) if raw is not None else None
        except IntegrityError:
            invalid.append(i)
    got = resolve(held, n, happy)
    return Latest(got.record, got.decided, got.holders, got.stale, tuple(invalid), got.anchor)


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
    seq: int  # sign the new version with this sequence number ...
    chain: tuple[Checkstring, ...]  # ... this base chain ...
    merged: tuple[Checkstring, ...]  # ... and these merged versions
    base: SlotRecord | None  # apply the operations to this version's listing
    expects: Mapping[int, Checkstring | None]  # node index -> the checkstring to send it
    # Other writers' unmerged versions beside the base, each with the newest version it shares
    # with the base: the caller may merge some (their changes since that version, as
    # operations; nodes keep old versions) and call CasWrite.merge.
    heads: tuple[tuple[SlotRecord, Checkstring], ...] = ()


@dataclass(frozen=True)
class Done:
    record: Checkstring
    holders: int


class CasWrite:
    """One logical change to one slot on nodes 0..n-1, based first on ``base`` (a decided read,
    whose ``anchor`` is passed too: every attempt names it as a parent, so versions written while
    writers contend keep pointing at the last settled one however long the contention lasts)."""

    def __init__(self, n: int, happy: int, base: SlotRecord | None, anchor: Checkstring | None = None,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        check_quorum(n, happy)
        self.n, self.happy, self.max_attempts = n, happy, max_attempts
        self.base = base
        self.anchor = anchor
        self.attempts = 0
        self.state = "rebasing"
        self.held: dict[int, SlotRecord | None] = {}  # what each node last said it holds
        self._own: list[tuple[SlotRecord, Checkstring | None]] = []  # my attempts and their bases
        self._seen_seq = base.seq if base is not None else 0

    def attempt(self) -> Attempt:
        if self.state != "rebasing":
            raise RuntimeError(f"attempt() in state {self.state}")
        self.attempts += 1
        self.state = "writing"
        base = self.base
        base_chain: list[Checkstring] = []
        merged: list[Checkstring] = []
        if base is not None:
            base_chain = [base.checkstring, *base.chain][: MAX_CHAIN]
            if self.anchor is not None and self.anchor not in base_chain:
                base_chain[-1:] = [self.anchor] if len(base_chain) == MAX_CHAIN else [base_chain[-1], self.anchor]
            for rec, rec_base in reversed(self._own):
                if rec.checkstring not in base_chain and (rec_base is None or rec_base in lineage(base)):
                    merged.append(rec.checkstring)  # my earlier attempt's changes are mine, re-applied
        merged = merged[: MAX_PARENTS - len(base_chain)]
        parents = base_chain + merged
        base_cs = base.checkstring if base is not None else None
        expects: dict[int, Checkstring | None] = {}
        for i in range(self.n):
            cur = self.held.get(i, base)
            if i in self.held and cur is None:
                expects[i] = None  # an empty node takes any version
            elif cur is not None and cur.checkstring in parents:
                expects[i] = cur.checkstring
            else:
                expects[i] = base_cs
        heads: list[tuple[SlotRecord, Checkstring]] = []
        if base is not None:
            own = {r.checkstring for r, _ in self._own}
            mine = lineage(base)
            down: Counter[Checkstring] = Counter()
            for h in self.held.values():
                if h is not None:
                    down.update(chain(h))
            floor = self.anchor.seq if self.anchor is not None else 0
            for h in sorted({h.checkstring: h for h in self.held.values() if h is not None}.values(),
                            key=lambda r: (r.seq, r.hash), reverse=True):
                common = lineage(h) & mine
                # Only versions never settled (so never saved) and not older than the anchor:
                # an old saved version the base's bounded lineage no longer names is not a head.
                if (h.checkstring not in mine and h.checkstring not in own and common
                        and down[h.checkstring] < self.happy and h.seq >= floor):
                    heads.append((h, max(common, key=lambda cs: (cs.seq, cs.hash))))
        return Attempt(self._seen_seq + 1, tuple(base_chain), tuple(merged), base, expects, tuple(heads))

    def merge(self, att: Attempt, merged_heads: list[SlotRecord]) -> Attempt:
        """``att`` with ``merged_heads`` (some of ``att.heads``, whose changes since the anchor the
        caller applied) named as parents, so the nodes holding them can move on too."""
        room = MAX_PARENTS - len(att.chain) - len(att.merged)
        offered = {h.checkstring for h, _ in att.heads}
        extra = [h.checkstring for h in merged_heads if h.checkstring in offered][: max(0, room)]
        expects = dict(att.expects)
        for i, rec in self.held.items():
            if rec is not None and rec.checkstring in extra:
                expects[i] = rec.checkstring
        return Attempt(att.seq, att.chain, att.merged + tuple(extra), att.base, expects)

    def feed(self, mine: SlotRecord, replies: Mapping[int, Reply]) -> Done | Attempt:
        """The nodes' answers to the record ``mine``; Done, or the next Attempt (the caller applies
        its operations to ``attempt.base``, signs, and sends again, best after ``backoff``)."""
        if self.state != "writing":
            raise RuntimeError(f"feed() in state {self.state}")
        self._own.append((mine, self.base.checkstring if self.base is not None else None))
        accepted = 0
        for i, r in replies.items():
            if isinstance(r, Accepted):
                accepted += 1
                self.held[i] = mine
            elif isinstance(r, Holds):
                self.held[i] = r.record
                if r.record is not None:
                    self._seen_seq = max(self._seen_seq, r.record.seq)
            else:
                self.held.pop(i, None)
        self._seen_seq = max(self._seen_seq, mine.seq)
        if accepted >= self.happy:
            self.state = "done"
            return Done(mine.checkstring, accepted)
        answered = sum(1 for r in replies.values() if not isinstance(r, Silent))
        self.state = "failed"
        if answered < self.happy:
            raise UnavailableError(f"only {answered} of {self.n} nodes answered; {self.happy} are needed to write")
        if self.attempts >= self.max_attempts:
            raise WriteConflictError(f"the folder is busy: {self.attempts} attempts lost a race with other writers; "
                                     "nothing was saved, try again")
        census = resolve(self.held, self.n, self.happy)
        if not census.decided:
            raise UnavailableError("cannot tell which version of the folder is current: "
                                   f"{self.n - len(self.held)} of {self.n} nodes did not answer")
        self.base = census.record
        # Keep the earlier anchor only where the new base is known to contain it: a parent is a
        # promise about content.
        keep = self.base is not None and self.anchor is not None and self.anchor in lineage(self.base)
        self.anchor = census.anchor or (self.anchor if keep else None)
        self.state = "rebasing"
        return self.attempt()


def backoff(attempt: int, rng: random.Random, unit: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before attempt ``attempt`` (2, 3, ...): full jitter, so racers spread out."""
    return rng.uniform(0, min(cap, unit * 2 ** (attempt - 1)))
