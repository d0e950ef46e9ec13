"""Upload sessions: sealed segments from a browser, in order, into a key-free ShareUploader.

One session per file, a small state machine (docs/specs/gateway.md, "Upload session"), the
table TRANSITIONS; ``step`` refuses any other move::

    open --segments--> open --last_segment--> complete --finish--> finishing --stored--> done
      \\__________ fail: abort / timeout / expiry / error / shutdown (from any of the three) __--> aborted

Every state but the two terminal ones has a deadline (TIMEOUTS, from the session's last
progress), and every session an absolute lifetime (MAX_LIFETIME, from its creation), so a
browser that leaves at any point frees its slot: ``reap`` (run on a timer by the gateway) fails
every session past either. A ``done`` session is kept DONE_KEEP seconds with its manifest, so a
``finish`` whose answer was lost on the way can be asked again.

Resuming (tus-like, by offset): a batch's segments are addressed by index, and a batch that
starts below the next expected index has its already-received segments skipped (the page seals
deterministically: same key, same index, same bytes), so a page that lost its connection asks
``status`` for ``next`` and sends again from there; repeats are harmless.

Segment batches may arrive on parallel connections; each waits (bounded) for its turn so the
uploader sees them in order. A batch is size-checked against the declared file before a byte
of it is read, and the file size against the tenant's limit before anything is stored.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from veil.client.network import Network
from veil.client.upload import ShareUploader
from veil.errors import UsageError, VeilError
from veil.format.manifest import MAX_SEGMENT, MIN_SEGMENT, Manifest
from veil.format.segments import segment_count

MAX_BATCH_BYTES = 16 << 20  # one PUT of sealed segments
TURN_TIMEOUT = 60.0
IDLE_TIMEOUT = 900.0  # open or complete, with no request: long enough to come back after a dropped connection
FINISH_TIMEOUT = 1800.0  # finishing: committing every share and publishing the manifest
MAX_LIFETIME = 24 * 3600.0  # a session's whole life, however steady its progress
DONE_KEEP = 600.0  # a done session's manifest stays available to a repeated finish
MAX_META = 16 * 1024


class UploadState(Enum):
    OPEN = "open"  # taking segments
    COMPLETE = "complete"  # every segment received; waiting for finish
    FINISHING = "finishing"  # committing shares and publishing the manifest
    DONE = "done"
    ABORTED = "aborted"


class UploadEvent(Enum):
    SEGMENTS = "segments"  # a batch that leaves segments to come
    LAST_SEGMENT = "last_segment"  # the batch that completes the file
    FINISH = "finish"
    STORED = "stored"  # finish succeeded
    FAIL = "fail"  # aborted by the client, timed out, a node failed, the gateway stops


TRANSITIONS: dict[tuple[UploadState, UploadEvent], UploadState] = {
    (UploadState.OPEN, UploadEvent.SEGMENTS): UploadState.OPEN,
    (UploadState.OPEN, UploadEvent.LAST_SEGMENT): UploadState.COMPLETE,
    (UploadState.COMPLETE, UploadEvent.FINISH): UploadState.FINISHING,
    (UploadState.FINISHING, UploadEvent.STORED): UploadState.DONE,
    (UploadState.OPEN, UploadEvent.FAIL): UploadState.ABORTED,
    (UploadState.COMPLETE, UploadEvent.FAIL): UploadState.ABORTED,
    (UploadState.FINISHING, UploadEvent.FAIL): UploadState.ABORTED,
}
TERMINAL = frozenset({UploadState.DONE, UploadState.ABORTED})
# Seconds a session may stay in a state without progress; every non-terminal state has one.
TIMEOUTS: dict[UploadState, float] = {
    UploadState.OPEN: IDLE_TIMEOUT,
    UploadState.COMPLETE: IDLE_TIMEOUT,
    UploadState.FINISHING: FINISH_TIMEOUT,
}


class UploadStateError(UsageError):
    """The upload is not in a state that allows this request (finished, aborted or out of order)."""


def step(state: UploadState, event: UploadEvent) -> UploadState:
    """The next state; UploadStateError for a move the table does not have."""
    nxt = TRANSITIONS.get((state, event))
    if nxt is None:
        raise UploadStateError(f"upload is {state.value}; {event.value} is not possible now")
    return nxt


class SegmentSink(Protocol):
    """What a session feeds (veil.client.upload.ShareUploader; a fake in unit tests)."""

    k: int
    n: int

    def ciphertext_len(self, index: int) -> int: ...

    def add_segment(self, ct: bytes | memoryview) -> None: ...

    def abort(self) -> None: ...

    def finish(self, meta: bytes, payout: bytes | None = None,
               delete: bytes | None = None) -> tuple[Manifest, list[str]]: ...  # fmt: skip


# (network, storage index, size, k, n, happy, segsize) -> the sink of one upload
SinkFactory = Callable[[Network, bytes, int, int, int, "int | None", int], SegmentSink]


@dataclass
class UploadSession:
    id: str
    tenant: str
    size: int
    segsize: int
    meta: bytes
    uploader: SegmentSink
    nseg: int
    state: UploadState = UploadState.OPEN
    next_index: int = 0
    touched: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.monotonic)
    cond: threading.Condition = field(default_factory=threading.Condition)
    error: str | None = None
    manifest: bytes | None = None  # once done
    repeats: int = 0  # segments sent again after a resume (already received, skipped)
    delete: bytes | None = None  # the browser's deletion commitment, for the manifest (caps.md)

    def ciphertext_len(self, index: int) -> int:
        return self.uploader.ciphertext_len(index)

    def move(self, event: UploadEvent, now: float) -> None:
        """Take one transition (caller holds ``cond``); progress restarts the state's deadline."""
        self.state = step(self.state, event)
        self.touched = now


class UploadManager:
    """All live upload sessions of one gateway; bounded in number and reaped past their state's deadline."""

    def __init__(self, network: Callable[[], Network], max_sessions: int = 64,
                 timeouts: dict[UploadState, float] | None = None, clock: Callable[[], float] = time.monotonic,
                 make_sink: SinkFactory = ShareUploader, lifetime: float = MAX_LIFETIME,
                 done_keep: float = DONE_KEEP) -> None:
        self._network = network
        self.max_sessions = max_sessions
        self.timeouts = {**TIMEOUTS, **(timeouts or {})}
        self.lifetime = lifetime
        self.done_keep = done_keep
        self.clock = clock
        self._make_sink = make_sink
        self._lock = threading.Lock()
        self._sessions: dict[str, UploadSession] = {}

    def begin(self, tenant: str, si: bytes, size: int, segsize: int, k: int, n: int, happy: int | None,
              meta: bytes, delete: bytes | None = None) -> UploadSession:
        if not MIN_SEGMENT <= segsize <= MAX_SEGMENT:
            raise UsageError(f"segsize must be in [{MIN_SEGMENT}, {MAX_SEGMENT}]")
        if len(meta) > MAX_META or len(meta) < 16 + 128:
            raise UsageError("sealed metadata has an impossible size")
        self.reap()
        with self._lock:
            if sum(1 for x in self._sessions.values() if x.state not in TERMINAL) >= self.max_sessions:
                raise UploadBusyError("the gateway has too many uploads in progress; try again shortly")
        up = self._make_sink(self._network(), si, size, k, n, happy, segsize)
        now = self.clock()
        s = UploadSession(secrets.token_hex(16), tenant, size, segsize, meta, up, segment_count(size, segsize),
                          touched=now, created=now, delete=delete)
        with self._lock:
            self._sessions[s.id] = s
        return s

    def get(self, uid: str, tenant: str) -> UploadSession:
        with self._lock:
            s = self._sessions.get(uid)
        if s is None or s.tenant != tenant:
            raise UploadGoneError("no such upload (it finished, was aborted, or timed out)")
        return s

    def batch_len(self, s: UploadSession, start: int, count: int) -> int:
        """Bytes a batch of ``count`` sealed segments from ``start`` must have."""
        if count < 1 or start < 0 or start + count > s.nseg:
            raise UsageError(f"segments {start}..{start + count - 1} are outside the file ({s.nseg} segments)")
        return sum(s.ciphertext_len(i) for i in range(start, start + count))

    def status(self, s: UploadSession) -> dict[str, object]:
        """Where a session stands, for a page that lost its connection: resume from ``next``."""
        now = self.clock()
        with s.cond:
            left = self.lifetime - (now - s.created)
            if s.state in TIMEOUTS:
                left = min(left, self.timeouts[s.state] - (now - s.touched))
            elif s.state is UploadState.DONE:
                left = self.done_keep - (now - s.touched)
            return {"id": s.id, "state": s.state.value, "next": s.next_index, "nseg": s.nseg,
                    "expires_in": max(0, int(left))}

    def add(self, s: UploadSession, start: int, segments: list[memoryview]) -> int:
        """Feed a batch once it is its turn; returns the next expected segment index.

        Segments below the next expected index were received before (a page resuming after a
        lost answer sends them again) and are skipped."""
        with s.cond:
            deadline = self.clock() + TURN_TIMEOUT
            while s.state is UploadState.OPEN and s.next_index < start:
                left = deadline - self.clock()
                if left <= 0:
                    raise UploadStateError(f"segment {start} arrived but segment {s.next_index} never did")
                s.cond.wait(min(left, 1.0))
            if start + len(segments) <= s.next_index:  # every one received already
                s.repeats += len(segments)
                s.touched = self.clock()
                return s.next_index
            if s.state is not UploadState.OPEN:
                raise UploadStateError(f"upload is {s.state.value}" + (f": {s.error}" if s.error else ""))
            skip = s.next_index - start
            s.repeats += skip
            try:
                for mv in segments[skip:]:
                    s.uploader.add_segment(mv)
                    s.next_index += 1
            except VeilError as e:
                self._fail(s, str(e))
                raise
            s.move(UploadEvent.LAST_SEGMENT if s.next_index == s.nseg else UploadEvent.SEGMENTS, self.clock())
            s.cond.notify_all()
            return s.next_index

    def finish(self, s: UploadSession) -> bytes:
        with s.cond:
            # A repeated finish (the first answer was lost): wait for the first one's outcome.
            deadline = self.clock() + self.timeouts[UploadState.FINISHING]
            while s.state is UploadState.FINISHING and self.clock() < deadline:
                s.cond.wait(1.0)
            if s.state is UploadState.DONE and s.manifest is not None:
                return s.manifest
            if s.state is not UploadState.COMPLETE:
                raise UploadStateError(
                    f"upload is {s.state.value}" + (f": {s.next_index} of {s.nseg} segments received"
                                                    if s.state is UploadState.OPEN else (f": {s.error}" if s.error else ""))
                )
            s.move(UploadEvent.FINISH, self.clock())
        try:
            man, _warnings = s.uploader.finish(s.meta, delete=s.delete)
        except VeilError as e:
            self._fail(s, str(e))
            raise
        with s.cond:
            if s.state in TERMINAL:  # aborted meanwhile: timed out, or the gateway stopped
                raise UploadStateError(f"upload is aborted: {s.error}")
            s.manifest = man.to_bytes()
            s.move(UploadEvent.STORED, self.clock())
            s.cond.notify_all()
        return s.manifest

    def abort(self, s: UploadSession) -> None:
        self._fail(s, "aborted by the client")

    def _fail(self, s: UploadSession, why: str) -> None:
        with s.cond:
            if s.state in TERMINAL:
                return
            s.move(UploadEvent.FAIL, self.clock())
            s.error = why
            s.cond.notify_all()
        with self._lock:
            self._sessions.pop(s.id, None)
        s.uploader.abort()

    def reap(self) -> int:
        """Fail every session that stayed in its state past that state's deadline; returns how many."""
        now = self.clock()
        with self._lock:
            for s in [s for s in self._sessions.values() if s.state is UploadState.DONE
                      and now - s.touched > self.done_keep]:  # fmt: skip
                del self._sessions[s.id]
            stale = [s for s in self._sessions.values()
                     if s.state not in TERMINAL and now - s.touched > self.timeouts[s.state]]  # fmt: skip
            old = [s for s in self._sessions.values()
                   if s.state not in TERMINAL and s not in stale and now - s.created > self.lifetime]  # fmt: skip
        for s in stale:
            self._fail(s, f"timed out ({s.state.value} for more than {self.timeouts[s.state]:.0f} s)")
        for s in old:
            self._fail(s, f"expired (older than {self.lifetime:.0f} s)")
        return len(stale) + len(old)

    def count(self) -> int:
        """Live sessions (done ones kept for a repeated finish are not counted)."""
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.state not in TERMINAL)

    def close(self) -> None:
        with self._lock:
            live = [s for s in self._sessions.values() if s.state not in TERMINAL]
        for s in live:
            self._fail(s, "gateway shutting down")


class UploadBusyError(VeilError):
    """The gateway is at its limit of concurrent uploads."""

    exit_code = 5


class UploadGoneError(VeilError):
    """The upload session does not exist (finished, aborted or timed out)."""

    exit_code = 4
