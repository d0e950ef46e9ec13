"""The repairer's scheduling core: triggers first, a sweep bounded in rate, leaders remembered."""

from __future__ import annotations

import os

import pytest

from veil.dht.routing import RoutingTable
from veil.node.repair_schedule import DEPARTED, NEW, SWEEP, RepairSchedule

ME, A, B, C = (bytes([i]) * 32 for i in range(4))


def _sis(count: int) -> list[bytes]:
    return [os.urandom(16) for _ in range(count)]


def _drain(s: RepairSchedule, now: float) -> list[tuple[bytes, str]]:
    out = []
    while (v := s.next(now)) is not None:
        out.append((v.key, v.reason))
    return out


def test_new_files_are_due_at_once_within_the_rate() -> None:
    s = RepairSchedule(ME, interval=100.0, rate=60.0, now=0.0)  # one visit a second, burst 5
    files = _sis(20)
    assert s.sync(files, 0.0) == 20
    first = _drain(s, 0.0)
    assert len(first) == 1 and first[0][1] == NEW  # one token to start with
    assert _drain(s, 0.5) == []
    assert len(_drain(s, 3.0)) == 3  # refilled at one a second
    assert len(_drain(s, 100.0)) == 5  # never more than the burst
    assert s.sync(files, 100.0) == 0


def test_sweep_cost_is_bounded_whatever_the_node_stores() -> None:
    for count in (10, 1000, 20_000):
        s = RepairSchedule(ME, interval=1.0, rate=120.0, now=0.0)
        s.sync(_sis(count), 0.0)
        visits = 0
        for t in range(1, 601):  # ten minutes, one step a second
            while (v := s.next(float(t))) is not None:
                s.learnt(v.key, A, None, float(t))
                visits += 1
        assert visits <= 120 * 10 + s.burst + 1
        if count >= 1000:
            assert visits >= 120 * 10 - 2


def test_a_file_is_not_visited_again_before_the_interval() -> None:
    s = RepairSchedule(ME, interval=50.0, rate=6000.0, now=0.0)
    si = _sis(1)[0]
    s.sync([si], 0.0)
    v = s.next(0.0)
    assert v is not None and v.reason == NEW
    s.learnt(si, A, None, 0.0)
    assert s.next(49.0) is None
    v = s.next(50.0)
    assert v is not None and v.reason == SWEEP and v.state.leader == A
    assert 0 < s.wait_hint(50.0) <= 50.0 or s.next(50.0) is None


def test_a_departed_leader_or_holder_triggers_its_files_only() -> None:
    s = RepairSchedule(ME, interval=1000.0, rate=1.0, now=0.0)
    led_by_a, led_by_b, mine_with_c, mine_without = _sis(4)
    s.sync([led_by_a, led_by_b, mine_with_c, mine_without], 0.0)
    s.learnt(led_by_a, A, None, 0.0)
    s.learnt(led_by_b, B, [B, C], 0.0)  # holders are kept only for files this node leads
    s.learnt(mine_with_c, ME, [ME, A, C], 0.0)
    s.learnt(mine_without, ME, [ME, A, B], 0.0)
    assert s.peers() == {A, B, C}
    assert s.departed(C, 1.0) == 1
    got = _drain(s, 1.0)
    assert got == [(mine_with_c, DEPARTED)]  # triggered visits spend no sweep budget
    assert s.is_departed(C, 2.0) and not s.is_departed(A, 2.0)
    s.answered(C)
    assert not s.is_departed(C, 2.0)
    assert s.departed(A, 3.0) == 3
    assert {si for si, r in _drain(s, 3.0)} == {led_by_a, mine_with_c, mine_without}
    assert s.departed(ME, 4.0) == 0


def test_departed_marks_expire() -> None:
    s = RepairSchedule(ME, interval=10.0, rate=1.0, now=0.0, departed_ttl=60.0)
    s.departed(A, 0.0)
    assert s.is_departed(A, 59.0)
    assert not s.is_departed(A, 61.0)


def test_files_that_go_are_forgotten_and_requeue_retries() -> None:
    s = RepairSchedule(ME, interval=100.0, rate=6000.0, now=0.0)
    a, b = _sis(2)
    s.sync([a, b], 0.0)
    s.learnt(a, ME, [ME, A], 0.0)
    s.sync([b], 1.0)
    assert a not in s.files and s.departed(A, 1.0) == 0
    v = s.next(1.0)
    assert v is not None and v.key == b
    assert s.next(1.0) is None  # in flight until learnt or requeued
    s.requeue(v, 1.0, 5.0)
    assert s.next(5.0) is None
    v = s.next(6.0)
    assert v is not None and v.key == b and v.reason == NEW


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        RepairSchedule(ME, interval=0.0, rate=1.0, now=0.0)
    with pytest.raises(ValueError):
        RepairSchedule(ME, interval=1.0, rate=0.0, now=0.0)


def test_routing_table_reports_evictions() -> None:
    own = bytes(32)
    rt = RoutingTable(own, k=2, max_failures=2)
    from veil.dht.ids import Contact

    peer = Contact(b"\x80" + bytes(31), "127.0.0.1:1")
    rt.observe(peer, 0.0)
    rt.failed(peer.node_id)
    assert rt.take_evicted() == []
    rt.failed(peer.node_id)
    assert rt.take_evicted() == [peer.node_id]
    assert rt.take_evicted() == []


def test_leading_count_follows_what_was_learnt() -> None:
    s = RepairSchedule(ME, interval=10.0, rate=60.0, now=0.0)
    a, b = _sis(2)
    s.sync([a, b], 0.0)
    s.learnt(a, ME, [ME, A], 0.0)
    s.learnt(b, ME, [ME], 0.0)
    assert s.leading == 2
    s.learnt(b, A, None, 0.0)
    s.learnt(a, ME, [ME], 0.0)
    assert s.leading == 1
    s.sync([b], 1.0)
    assert s.leading == 0


def test_a_predicted_leader_is_triggered_before_any_visit_and_still_confirmed() -> None:
    s = RepairSchedule(ME, interval=100.0, rate=1.0, now=0.0)
    theirs, mine = _sis(2)
    s.sync([theirs, mine], 0.0)
    s.predicted(theirs, A, [A, ME, B])
    s.predicted(mine, ME, [ME, B, C])
    assert s.leading == 1 and s.peers() == {A, B, C}
    assert s.departed(C, 0.0) == 1
    v = s.next(0.0)
    assert v is not None and (v.key, v.reason) == (mine, DEPARTED)
    v = s.next(0.0)
    assert v is not None and v.reason == NEW  # the guess is confirmed by a first visit
    s.learnt(v.key, B, None, 1.0)
    s.predicted(v.key, A, [A])  # a guess never overrides what was learnt
    assert s.files[v.key].leader == B


def test_a_failed_triggered_visit_is_retried_outside_the_budget_then_left_to_the_sweep() -> None:
    s = RepairSchedule(ME, interval=100.0, rate=0.001, now=0.0)
    si = _sis(1)[0]
    s.sync([si], 0.0)
    v = s.next(0.0)
    assert v is not None
    s.learnt(si, ME, [ME, A], 0.0)
    s.departed(A, 1.0)
    t = 1.0
    for attempt in range(5):
        v = s.next(t)
        assert v is not None and v.reason == DEPARTED, attempt
        s.requeue(v, t, 50.0)
        assert s.next(t) is None
        assert s.wait_hint(t) == 2.0**attempt
        t += 2.0**attempt
    v = s.next(t)
    assert v is not None and v.reason == DEPARTED
    s.requeue(v, t, 50.0)  # the fifth retry failed too: back to the sweep (whose budget is spent)
    assert s.next(t + 1000.0) is None
