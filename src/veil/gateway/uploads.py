"""Upload sessions: sealed segments from a browser, in order, into a key-free ShareUploader.

One session per file, a small state machine (docs/specs/gateway.md, "Upload session")::

    open --segments--> open --(all segments)--> complete --finish--> done
      \\________________ abort / idle timeout / error ___________________--> aborted

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

from veil.client.network import Network
from veil.client.upload import ShareUploader
from veil.errors import UsageError, VeilError
from veil.format.manifest import MAX_SEGMENT, MIN_SEGMENT
from veil.format.segments import segment_count

MAX_BATCH_BYTES = 16 << 20  # one PUT of sealed segments
TURN_TIMEOUT = 60.0
IDLE_TIMEOUT = 300.0
MAX_META = 16 * 1024


class UploadStateError(UsageError):
    """The upload is not in a state that allows this request (finished, aborted or out of order)."""


@dataclass
class UploadSession:
    id: str
    tenant: str
    size: int
    segsize: int
    meta: bytes
    uploader: ShareUploader
    nseg: int
    state: str = "open"  # open | complete | finishing | done | aborted
    next_index: int = 0
    touched: float = field(default_factory=time.monotonic)
    cond: threading.Condition = field(default_factory=threading.Condition)
    error: str | None = None

    def ciphertext_len(self, index: int) -> int:
        return self.uploader.ciphertext_len(index)


class UploadManager:
    """All live upload sessions of one gateway; bounded in number and reaped when idle."""

    def __init__(self, network: Callable[[], Network], max_sessions: int = 64, idle_timeout: float = IDLE_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._network = network
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, UploadSession] = {}

    def begin(self, tenant: str, si: bytes, size: int, segsize: int, k: int, n: int, happy: int | None,
              meta: bytes) -> UploadSession:
        if not MIN_SEGMENT <= segsize <= MAX_SEGMENT:
            raise UsageError(f"segsize must be in [{MIN_SEGMENT}, {MAX_SEGMENT}]")
        if len(meta) > MAX_META or len(meta) < 16 + 128:
            raise UsageError("sealed metadata has an impossible size")
        self.reap()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise UploadBusyError("the gateway has too many uploads in progress; try again shortly")
        up = ShareUploader(self._network(), si, size, k, n, happy, segsize)
        s = UploadSession(secrets.token_hex(16), tenant, size, segsize, meta, up, segment_count(size, segsize),
                          touched=self.clock())
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

    def add(self, s: UploadSession, start: int, segments: list[memoryview]) -> int:
        """Feed a batch once it is its turn; returns the next expected segment index."""
        with s.cond:
            deadline = self.clock() + TURN_TIMEOUT
            while s.state == "open" and s.next_index < start:
                left = deadline - self.clock()
                if left <= 0:
                    raise UploadStateError(f"segment {start} arrived but segment {s.next_index} never did")
                s.cond.wait(min(left, 1.0))
            if s.state not in ("open", "complete"):
                raise UploadStateError(f"upload is {s.state}" + (f": {s.error}" if s.error else ""))
            if s.next_index != start:
                raise UploadStateError(f"expected segment {s.next_index}, got {start}")
            try:
                for mv in segments:
                    s.uploader.add_segment(mv)
                    s.next_index += 1
            except VeilError as e:
                self._fail(s, str(e))
                raise
            if s.next_index == s.nseg:
                s.state = "complete"
            s.touched = self.clock()
            s.cond.notify_all()
            return s.next_index

    def finish(self, s: UploadSession) -> bytes:
        with s.cond:
            if s.state != "complete":
                raise UploadStateError(
                    f"upload is {s.state}" + (f": {s.next_index} of {s.nseg} segments received" if s.state == "open" else "")
                )
            s.state = "finishing"
        try:
            man, _warnings = s.uploader.finish(s.meta)
        except VeilError as e:
            self._fail(s, str(e))
            raise
        with s.cond:
            s.state = "done"
        with self._lock:
            self._sessions.pop(s.id, None)
        return man.to_bytes()

    def abort(self, s: UploadSession) -> None:
        self._fail(s, "aborted by the client")

    def _fail(self, s: UploadSession, why: str) -> None:
        with s.cond:
            if s.state in ("done", "aborted"):
                return
            s.state = "aborted"
            s.error = why
            s.cond.notify_all()
        with self._lock:
            self._sessions.pop(s.id, None)
        s.uploader.abort()

    def reap(self) -> int:
        """Abort sessions idle for longer than the idle timeout; returns how many."""
        now = self.clock()
        with self._lock:
            stale = [s for s in self._sessions.values() if s.state == "open" and now - s.touched > self.idle_timeout]
        for s in stale:
            self._fail(s, "timed out")
        return len(stale)

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        with self._lock:
            live = list(self._sessions.values())
        for s in live:
            self._fail(s, "gateway shutting down")


class UploadBusyError(VeilError):
    """The gateway is at its limit of concurrent uploads."""

    exit_code = 5


class UploadGoneError(VeilError):
    """The upload session does not exist (finished, aborted or timed out)."""

    exit_code = 4
