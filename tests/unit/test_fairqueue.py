"""The server's request queue: one address cannot hold every worker or every queue slot."""

from __future__ import annotations

import queue
import threading

import pytest

from veil.net.fairqueue import FairQueue


def _q(maxsize: int = 8, busy: int = 2, waiting: int = 3) -> FairQueue[tuple[str, int]]:
    return FairQueue(maxsize, busy, waiting, key=lambda item: item[0])


def test_a_key_at_its_busy_bound_lets_other_keys_through() -> None:
    q = _q()
    for i in range(3):
        q.put_nowait(("attacker", i))
    q.put_nowait(("client", 0))
    got = [q.get(), q.get()]  # the attacker may hold two workers ...
    assert got == [("attacker", 0), ("client", 0)]  # round robin: the client does not wait behind it
    third = q.get()
    assert third == ("attacker", 1)
    # ... and no third while both are busy: a fourth get would block; the waiting one stays queued
    assert q.qsize() == 1
    q.done(("attacker", 0))
    assert q.get() == ("attacker", 2)


def test_keys_take_turns() -> None:
    q = _q(maxsize=16, busy=4, waiting=4)
    for i in range(4):
        q.put_nowait(("a", i))
    for i in range(2):
        q.put_nowait(("b", i))
    order = [q.get() for _ in range(6)]
    assert [k for k, _ in order[:4]] == ["a", "b", "a", "b"]


def test_bounds_in_total_and_per_key() -> None:
    q = _q(maxsize=4, busy=1, waiting=2)
    q.put_nowait(("a", 0))
    q.put_nowait(("a", 1))
    with pytest.raises(queue.Full):
        q.put_nowait(("a", 2))  # a's share of the queue is used up
    q.put_nowait(("b", 0))
    q.put_nowait(("c", 0))
    with pytest.raises(queue.Full):
        q.put_nowait(("d", 0))  # the whole queue is full
    assert q.qsize() == 4


def test_none_stops_a_blocked_worker() -> None:
    q = _q()
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(q.get()))
    t.start()
    q.put_nowait(None)
    t.join(10)
    assert not t.is_alive() and out == [None]
