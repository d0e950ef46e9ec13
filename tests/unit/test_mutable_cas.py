"""Reads and compare-and-swap writes over n real slot stores (format/mutable_cas.py with
storage/mutable.py on in-memory SQLite): highest valid version, no rollback by stale or lying
nodes, and writers racing at every interleaving without a lost update."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from folder_strategies import file_entry

from veil.crypto.sign import SigningKey
from veil.errors import UnavailableError, WriteConflictError
from veil.format.folder import Entry, parse_listing, sorted_listing
from veil.format.folder_ops import Op, Put, apply_ops, diff_ops
from veil.format.mutable import Checkstring, SlotRecord, parse_record, sign_record, slot_id
from veil.format.mutable_cas import (
    Accepted,
    CasWrite,
    Done,
    Holds,
    Latest,
    Reply,
    Silent,
    backoff,
    check_quorum,
    pick_latest,
    read_count,
)
from veil.storage.mutable import MutableStore, SlotConflict

KEY = SigningKey(bytes([5]) * 32)
SLOT = slot_id(KEY.public_key)


def record(seq: int, names: list[str], *parents: SlotRecord) -> SlotRecord:
    lineage = tuple(dict.fromkeys(cs for p in parents for cs in (p.checkstring, *p.parents)))
    return sign_record(KEY, seq, sorted_listing([file_entry(n) for n in names]).to_bytes(), lineage[:8])


def entries_of(rec: SlotRecord | None) -> dict[str, Entry]:
    return {} if rec is None else {e.name: e for e in parse_listing(rec.payload).entries}


def test_quorum_rules() -> None:
    check_quorum(10, 7)
    check_quorum(1, 1)
    check_quorum(3, 2)
    for n, happy in ((10, 5), (4, 2), (3, 4), (0, 0)):
        with pytest.raises(ValueError):
            check_quorum(n, happy)
    assert read_count(10, 7, 3) == 4 and read_count(10, 9, 3) == 4 and read_count(10, 6, 1) == 5


def test_pick_latest_ignores_forgeries_and_stale_nodes() -> None:
    r1 = record(1, ["a"])
    v1, v2 = r1.raw, record(2, ["a", "b"], r1).raw
    forged = bytearray(record(9, ["evil"]).raw)
    forged[60] ^= 1
    other = sign_record(SigningKey(bytes(32)), 50, b"").raw  # valid, but another slot's
    got = pick_latest({0: v1, 1: v2, 2: bytes(forged), 3: other, 4: v2, 5: None}, SLOT, n=10, happy=7)
    assert got.record is not None and got.record.raw == v2
    assert got.holders == (1, 4) and got.invalid == (2, 3) and set(got.stale) == {0, 5}
    assert not got.decided  # the answers disagree and nothing is settled: ask the others
    everyone = {i: v2 for i in range(10)}
    everyone[0] = v1
    assert pick_latest(everyone, SLOT, 10, 7).decided
    assert pick_latest({0: v2, 1: v2, 2: v2, 3: v2}, SLOT, 10, 7).decided  # n - happy + 1 agree
    assert not pick_latest({0: v2, 1: v2, 2: v2}, SLOT, 10, 7).decided
    empty = pick_latest({i: None for i in range(4)}, SLOT, 10, 7)
    assert empty.record is None and empty.decided


def test_a_stale_or_lying_node_cannot_roll_a_folder_back() -> None:
    r1 = record(1, ["a"])
    old, new = r1.raw, record(2, ["a", "b"], r1).raw
    # One node serves the old version (stale or lying), one serves garbage; the rest are honest.
    for liar in range(4):
        replies: dict[int, bytes | None] = {i: new for i in range(4)}
        replies[liar] = old
        got = pick_latest(replies, SLOT, 10, 7)
        assert got.record is not None and got.record.seq == 2
        replies[(liar + 1) % 4] = b"garbage"
        assert pick_latest(replies, SLOT, 10, 7).record.seq == 2  # type: ignore[union-attr]


def test_the_settled_version_wins_over_a_crashed_writers_higher_one() -> None:
    base = record(2, ["a"])
    saved = record(3, ["a", "b"], base)
    orphan = record(4, ["a", "c"], base)  # built on the older base, reached only 3 nodes
    replies: dict[int, bytes | None] = {i: saved.raw for i in range(7)}
    replies.update({7: orphan.raw, 8: orphan.raw, 9: orphan.raw})
    got = pick_latest(replies, SLOT, 10, 7)
    assert got.record == saved and got.decided
    # Seen from a few nodes only, the orphan is higher but not settled: the reader asks the rest.
    few = pick_latest({0: saved.raw, 7: orphan.raw, 8: orphan.raw, 9: orphan.raw}, SLOT, 10, 7)
    assert not few.decided
    # A later version built on the saved one, on a few nodes, wins (it contains the saved one).
    later = record(5, ["a", "b", "d"], saved)
    replies.update({0: later.raw, 1: later.raw})
    got = pick_latest(replies, SLOT, 10, 7)
    assert got.record == later and got.decided


class Grid:
    """n real stores; what a client would reach over the wire."""

    def __init__(self, n: int) -> None:
        self.stores = [MutableStore(Path(":memory:")) for _ in range(n)]

    def put(self, i: int, rec: SlotRecord, expect: object) -> Reply:
        try:
            self.stores[i].put(SLOT, rec.raw, expect)  # type: ignore[arg-type]
        except SlotConflict as e:
            return Holds(parse_record(e.current, SLOT) if e.current is not None else None)
        return Accepted()

    def version(self, cs: Checkstring) -> SlotRecord | None:
        """An old version, from any node that still keeps it (GET ?seq=N)."""
        for st in self.stores:
            raw = st.get(SLOT, cs.seq)
            if raw is not None and parse_record(raw, SLOT).checkstring == cs:
                return parse_record(raw, SLOT)
        return None

    def read(self, nodes: list[int]) -> dict[int, bytes | None]:
        return {i: self.stores[i].get(SLOT) for i in nodes}


def read_latest(grid: Grid, rng: random.Random, happy: int) -> Latest:
    n = len(grid.stores)
    first = rng.sample(range(n), read_count(n, happy, 1))
    got = pick_latest(grid.read(first), SLOT, n, happy)
    if not got.decided:
        got = pick_latest(grid.read(list(range(n))), SLOT, n, happy)
    assert got.decided
    return got


def update(grid: Grid, happy: int, ops: list[Op], rng: random.Random, outcome: dict[str, str],
           name: str) -> Iterator[None]:
    """One writer's update as a generator: it yields before every request, so a scheduler can
    interleave writers at every step."""
    n = len(grid.stores)
    yield
    read = read_latest(grid, rng, happy)
    cas = CasWrite(n, happy, read.record, read.anchor)
    att = cas.attempt()
    while True:
        try:
            content = apply_ops(entries_of(att.base), ops)
        except WriteConflictError:
            outcome[name] = "conflict"
            return
        merged = []
        for h, since in att.heads:  # merge other writers' unmerged versions (a crashed writer's orphans)
            common = grid.version(since)
            if common is None:
                continue
            try:
                content = apply_ops(content, diff_ops(entries_of(common), entries_of(h)))
            except WriteConflictError:
                continue
            merged.append(h)
        if merged:
            att = cas.merge(att, merged)
        rec = sign_record(KEY, att.seq, sorted_listing(list(content.values())).to_bytes(), att.chain, att.merged)
        replies: dict[int, Reply] = {}
        for i in rng.sample(range(n), n):
            yield
            replies[i] = grid.put(i, rec, att.expects[i])
        try:
            res = cas.feed(rec, replies)
        except (WriteConflictError, UnavailableError) as e:
            outcome[name] = type(e).__name__
            return
        if isinstance(res, Done):
            outcome[name] = "saved"
            return
        att = res


def run(seed: int, writers: int, updates: int, n: int = 5, happy: int = 3, crash: bool = False) -> None:
    rng = random.Random(seed)
    grid = Grid(n)
    outcome: dict[str, str] = {}
    queues = [[f"w{w}-{u}" for u in range(updates)] for w in range(writers)]
    running: dict[int, Iterator[None]] = {}
    crashed: set[str] = set()
    while any(queues) or running:
        for w in range(writers):
            if w not in running and queues[w]:
                name = queues[w].pop(0)
                running[w] = update(grid, happy, [Put(file_entry(name))], rng, outcome, name)
        w = rng.choice(sorted(running))
        if crash and rng.random() < 0.02:
            crashed.add(next(n for n in (f"w{w}-{u}" for u in range(updates)) if n not in outcome and n not in crashed))
            del running[w]
            continue
        try:
            next(running[w])
        except StopIteration:
            del running[w]
    final = read_latest(grid, rng, happy).record
    have = set(entries_of(final))
    saved = {k for k, v in outcome.items() if v == "saved"}
    assert saved <= have, f"seed {seed}: saved but lost: {sorted(saved - have)}"
    assert have <= set(outcome) | crashed  # nothing appears that nobody wrote
    assert saved, f"seed {seed}: no update got through"
    # Alone again, a writer gets through whatever orphans the race left, and loses nothing.
    for _ in update(grid, happy, [Put(file_entry("last"))], rng, outcome, "last"):
        pass
    assert outcome["last"] == "saved", f"seed {seed}: the folder stays stuck: {outcome['last']}"
    assert saved | {"last"} <= set(entries_of(read_latest(grid, rng, happy).record))


@pytest.mark.parametrize("seed", range(20))
def test_two_writers_hammering_one_folder_lose_nothing_saved(seed: int) -> None:
    run(seed, writers=2, updates=5)


@pytest.mark.parametrize("seed", range(10))
def test_three_writers_on_seven_nodes(seed: int) -> None:
    run(1000 + seed, writers=3, updates=4, n=7, happy=4)


@pytest.mark.parametrize("seed", range(6))
def test_four_writers_on_five_nodes(seed: int) -> None:
    run(3000 + seed, writers=4, updates=3, n=5, happy=3)


@pytest.mark.parametrize("seed", range(8))
def test_writers_that_crash_mid_write_cost_only_their_own_change(seed: int) -> None:
    run(2000 + seed, writers=3, updates=5, crash=True)


def test_single_writer_is_one_round_and_conflicting_edit_fails_clearly() -> None:
    grid = Grid(5)
    cas = CasWrite(5, 3, None)
    att = cas.attempt()
    assert att.seq == 1 and set(att.expects.values()) == {None}
    rec = record(1, ["a"])
    assert isinstance(cas.feed(rec, {i: grid.put(i, rec, None) for i in range(5)}), Done)
    # Another writer replaces "a" meanwhile; ours expected the original: a clear conflict.
    theirs = record(2, [], rec)
    for i in range(5):
        grid.put(i, theirs, rec.checkstring)
    a_new = file_entry("a", 7)
    with pytest.raises(WriteConflictError, match="another writer"):
        apply_ops(entries_of(theirs) | {"a": file_entry("a", 9)}, [Put(a_new, file_entry("a"))])


def test_too_few_answers_or_an_undecidable_race_stop_the_writer() -> None:
    rec = record(1, ["a"])
    cas = CasWrite(5, 3, None)
    cas.attempt()
    with pytest.raises(UnavailableError, match="answered"):
        cas.feed(rec, {0: Accepted(), 1: Accepted(), 2: Silent(), 3: Silent(), 4: Silent()})
    other = record(1, ["b"])
    cas = CasWrite(5, 3, None)
    cas.attempt()
    with pytest.raises(UnavailableError, match="cannot tell"):
        cas.feed(rec, {0: Accepted(), 1: Accepted(), 2: Holds(other), 3: Holds(other)})


def test_a_lost_race_rebases_on_the_settled_winner() -> None:
    base = record(1, ["a"])
    winner = record(2, ["a", "w"], base)
    mine = record(2, ["a", "m"], base)
    cas = CasWrite(5, 3, base)
    first = cas.attempt()
    assert first.seq == 2 and first.base == base and first.chain == (base.checkstring,) and first.merged == ()
    nxt = cas.feed(mine, {0: Accepted(), 1: Holds(winner), 2: Holds(winner), 3: Holds(winner), 4: Accepted()})
    assert not isinstance(nxt, Done)
    assert nxt.base == winner and nxt.seq == 3
    # My first attempt's changes are re-applied on the winner, so it is a parent too: the nodes
    # holding it can move on; the winner's holders are asked to swap the winner.
    assert nxt.chain == (winner.checkstring, base.checkstring) and nxt.merged == (mine.checkstring,)
    assert nxt.expects[0] == mine.checkstring and nxt.expects[1] == winner.checkstring
    with pytest.raises(RuntimeError):
        cas.attempt()


def test_the_writer_gives_up_after_max_attempts() -> None:
    base = record(1, ["a"])
    cas = CasWrite(3, 2, base, max_attempts=2)
    att = cas.attempt()
    for seq in (2, 3):
        mine = record(att.seq, ["mine", str(seq)], base)
        theirs = record(att.seq, ["theirs", str(seq)], base)
        replies: dict[int, Reply] = {0: Accepted(), 1: Holds(theirs), 2: Holds(theirs)}
        if seq == 3:
            with pytest.raises(WriteConflictError, match="busy"):
                cas.feed(mine, replies)
        else:
            att = cas.feed(mine, replies)  # type: ignore[assignment]
            base = theirs


def test_backoff_is_bounded_jitter() -> None:
    rng = random.Random(1)
    waits = [backoff(a, rng) for a in range(1, 20)]
    assert all(0 <= w <= 2.0 for w in waits) and len(set(waits)) == len(waits)


def test_a_crashed_writers_orphan_is_offered_for_merging_and_then_replaced() -> None:
    base = record(1, ["a"])
    saved = record(2, ["a", "s"], base)  # on nodes 0-2 (settled: happy = 3 of 5)
    orphan = record(2, ["a", "o"], base)  # a crashed writer's, on nodes 3-4
    mine = record(3, ["a", "s", "m"], saved)
    cas = CasWrite(5, 3, saved, anchor=base.checkstring)
    cas.attempt()
    nxt = cas.feed(mine, {0: Accepted(), 1: Accepted(), 2: Holds(record(3, ["x"], saved)), 3: Holds(orphan), 4: Holds(orphan)})
    assert not isinstance(nxt, Done)
    assert (orphan, base.checkstring) in nxt.heads  # the newest version the orphan shares with ours
    merged = cas.merge(nxt, [orphan])
    assert orphan.checkstring in merged.merged and merged.expects[3] == merged.expects[4] == orphan.checkstring
    assert cas.merge(nxt, [record(2, ["not offered"], base)]).merged == nxt.merged  # only offered heads
