"""The gateway's upload session machine (gateway/uploads.py): its table, and the deadline of
every state, on a manual clock with an in-memory sink in place of the nodes (the real
ShareUploader is exercised by the gateway's integration and browser tests)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from veil.client.network import Network
from veil.gateway.uploads import (
    FINISH_TIMEOUT,
    IDLE_TIMEOUT,
    TERMINAL,
    TIMEOUTS,
    TRANSITIONS,
    UploadEvent,
    UploadGoneError,
    UploadManager,
    UploadSession,
    UploadState,
    UploadStateError,
    step,
)

SEG = 4096
META = bytes(16 + 128)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeManifest:
    def to_bytes(self) -> bytes:
        return b"manifest"


class FakeSink:
    """Takes segments and 'stores' them; ``finish`` can be held to model a slow commit."""

    def __init__(self, net: Network, si: bytes, size: int, k: int, n: int, happy: int | None, segsize: int) -> None:
        self.k, self.n, self.size, self.segsize = k, n, size, segsize
        self.segments = 0
        self.aborted = False
        self.hold: threading.Event | None = None
        self.finishing = threading.Event()

    def ciphertext_len(self, index: int) -> int:
        return 1

    def add_segment(self, ct: bytes | memoryview) -> None:
        self.segments += 1

    def abort(self) -> None:
        self.aborted = True

    def finish(self, meta: bytes, payout: bytes | None = None, delete: bytes | None = None) -> tuple[Any, list[str]]:
        self.finishing.set()
        if self.hold is not None:
            self.hold.wait(30)
        return FakeManifest(), []


def manager(clock: Clock) -> UploadManager:
    return UploadManager(lambda: Network(nodes=[]), max_sessions=2, clock=clock, make_sink=FakeSink)


def begin(m: UploadManager, nseg: int = 2) -> UploadSession:
    return m.begin("t", bytes(16), nseg * SEG, SEG, 3, 10, None, META)


def test_table_happy_path() -> None:
    s = UploadState.OPEN
    for ev in (UploadEvent.SEGMENTS, UploadEvent.LAST_SEGMENT, UploadEvent.FINISH, UploadEvent.STORED):
        s = step(s, ev)
    assert s is UploadState.DONE


def test_table_every_live_state_can_fail_and_times_out_terminal_states_are_final() -> None:
    for state in UploadState:
        if state in TERMINAL:
            assert not [k for k in TRANSITIONS if k[0] is state]
            assert state not in TIMEOUTS
            with pytest.raises(UploadStateError):
                step(state, UploadEvent.FAIL)
        else:
            assert step(state, UploadEvent.FAIL) is UploadState.ABORTED
            assert TIMEOUTS[state] > 0


@pytest.mark.parametrize(("state", "event"), [
    (UploadState.OPEN, UploadEvent.FINISH),
    (UploadState.OPEN, UploadEvent.STORED),
    (UploadState.COMPLETE, UploadEvent.SEGMENTS),
    (UploadState.COMPLETE, UploadEvent.LAST_SEGMENT),
    (UploadState.FINISHING, UploadEvent.FINISH),
    (UploadState.DONE, UploadEvent.FINISH),
])  # fmt: skip
def test_table_refuses_other_moves(state: UploadState, event: UploadEvent) -> None:
    with pytest.raises(UploadStateError):
        step(state, event)


def test_open_session_times_out_and_progress_restarts_the_deadline() -> None:
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=3)
    clock.now += IDLE_TIMEOUT - 1
    assert m.add(s, 0, [memoryview(b"x")]) == 1
    clock.now += IDLE_TIMEOUT - 1
    assert m.reap() == 0 and s.state is UploadState.OPEN
    clock.now += 2
    assert m.reap() == 1
    assert s.state is UploadState.ABORTED and "timed out" in (s.error or "")
    assert isinstance(s.uploader, FakeSink) and s.uploader.aborted
    with pytest.raises(UploadGoneError):
        m.get(s.id, "t")
    assert m.count() == 0


def test_complete_session_whose_browser_left_frees_its_slot() -> None:
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=1)
    m.add(s, 0, [memoryview(b"x")])
    assert s.state is UploadState.COMPLETE
    begin(m)  # the second of two slots
    with pytest.raises(Exception, match="too many uploads"):
        begin(m)
    clock.now += TIMEOUTS[UploadState.COMPLETE] + 1
    assert m.reap() == 2
    assert s.state is UploadState.ABORTED
    with pytest.raises(UploadStateError, match="aborted"):
        m.finish(s)
    begin(m)  # slots are free again


def test_finishing_session_past_its_deadline_frees_its_slot_and_reports_it() -> None:
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=1)
    m.add(s, 0, [memoryview(b"x")])
    sink = s.uploader
    assert isinstance(sink, FakeSink)
    sink.hold = threading.Event()
    errors: list[Exception] = []

    def finish() -> None:
        try:
            m.finish(s)
        except UploadStateError as e:
            errors.append(e)

    t = threading.Thread(target=finish)
    t.start()
    assert sink.finishing.wait(30)
    assert s.state is UploadState.FINISHING
    clock.now += IDLE_TIMEOUT + 1  # longer than open/complete may idle, shorter than a finish may take
    assert m.reap() == 0
    clock.now += FINISH_TIMEOUT
    assert m.reap() == 1
    assert m.count() == 0 and s.state is UploadState.ABORTED
    sink.hold.set()
    t.join(30)
    assert len(errors) == 1 and "timed out" in str(errors[0])


def test_finish_in_time_is_done() -> None:
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=2)
    m.add(s, 0, [memoryview(b"x"), memoryview(b"y")])
    assert m.finish(s) == b"manifest"
    assert s.state is UploadState.DONE and m.count() == 0
    clock.now += FINISH_TIMEOUT * 2
    assert m.reap() == 0


def test_segments_after_complete_are_refused() -> None:
    m = manager(Clock())
    s = begin(m, nseg=1)
    m.add(s, 0, [memoryview(b"x")])
    with pytest.raises(UploadStateError):
        m.add(s, 1, [memoryview(b"x")])


def test_resume_skips_segments_already_received_and_status_says_where_to_go_on() -> None:
    """Issue 16: a page that lost its connection asks for ``next`` and sends again from there."""
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=6)
    assert m.add(s, 0, [memoryview(b"a")] * 2) == 2
    st = m.status(s)
    assert st["state"] == "open" and st["next"] == 2 and st["nseg"] == 6 and st["expires_in"] == int(IDLE_TIMEOUT)
    # The answer to [2, 4) was lost, so the page sends [0, 4) again... and then [2, 6) once more.
    assert m.add(s, 0, [memoryview(b"a")] * 4) == 4
    assert m.add(s, 2, [memoryview(b"a")] * 4) == 6
    sink = s.uploader
    assert isinstance(sink, FakeSink) and sink.segments == 6  # each segment reached the nodes once
    assert s.repeats == 4 and s.state is UploadState.COMPLETE
    assert m.add(s, 4, [memoryview(b"a")] * 2) == 6  # a late repeat after the last segment is harmless


def test_a_repeated_finish_gets_the_same_manifest_and_done_sessions_are_dropped_later() -> None:
    clock = Clock()
    m = manager(clock)
    s = begin(m, nseg=1)
    m.add(s, 0, [memoryview(b"x")])
    assert m.finish(s) == b"manifest"
    assert m.get(s.id, "t") is s and m.finish(s) == b"manifest"  # the first answer was lost on the way
    assert m.status(s)["state"] == "done" and m.count() == 0  # done sessions hold no slot
    begin(m), begin(m)  # both slots free
    clock.now += m.done_keep + 1
    m.reap()
    with pytest.raises(UploadGoneError):
        m.get(s.id, "t")


def test_a_session_expires_after_its_lifetime_however_steady_its_progress() -> None:
    clock = Clock()
    m = UploadManager(lambda: Network(nodes=[]), clock=clock, make_sink=FakeSink, lifetime=3 * IDLE_TIMEOUT)
    s = begin(m, nseg=100)
    for i in range(3):
        clock.now += IDLE_TIMEOUT - 1
        m.add(s, i, [memoryview(b"x")])
        assert m.reap() == 0
    assert m.status(s)["expires_in"] == 3
    clock.now += 4
    assert m.reap() == 1
    assert s.state is UploadState.ABORTED and s.error is not None and "expired" in s.error
    with pytest.raises(UploadGoneError):
        m.get(s.id, "t")
