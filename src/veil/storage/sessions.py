"""Upload sessions: bounded per client and in total, reaped when idle, holding no open file.

A session is a promise of space (reserved when it begins) and a temp file under ``incoming/``
that is created only when the first block arrives and opened only for the length of one
request, so idle or abandoned sessions hold no file descriptor (issue 18, defect 2). Past
``max_per_peer`` sessions from one address, or ``max_total`` in all, a new session is refused
with ``SessionsFull`` (503 + Retry-After on the wire). Sessions idle for ``idle_seconds`` are
removed by ``reap`` (the store runs it on a timer) and their space is released.

Per-block hashes are not kept in memory: the writer puts each block's leaf hash and segment
leaf straight into the temp file, at the place the trees will occupy (format/share.py), and
the commit reads them back.

Imports from: veil.errors, veil.protocol.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veil.errors import NotFoundError, UnavailableError
from veil.protocol.storage import UploadRequest

IDLE_SECONDS = 120.0
MAX_PER_PEER = 32
MAX_TOTAL = 256
RETRY_AFTER = 10


class SessionsFull(UnavailableError):
    """The node has as many upload sessions open as it allows; retry in a few seconds."""

    retry_after = RETRY_AFTER


@dataclass
class Upload:
    id: str
    req: UploadRequest
    path: Path
    peer: str
    reserved: int
    touched: float
    next_block: int = 0
    created: bool = False  # the temp file exists
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False  # committed or aborted: no more writes


class Sessions:
    def __init__(self, incoming: Path, release: Callable[[int], None], clock: Callable[[], float] = time.monotonic,
                 idle_seconds: float = IDLE_SECONDS, max_per_peer: int = MAX_PER_PEER,
                 max_total: int = MAX_TOTAL) -> None:
        self.incoming = incoming
        self._release = release
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.max_per_peer = max_per_peer
        self.max_total = max_total
        self._by_id: dict[str, Upload] = {}
        self._per_peer: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)

    def admit(self, peer: str) -> None:
        """Raise SessionsFull when a new session from ``peer`` would pass a bound."""
        with self._lock:
            self._admit_locked(peer)

    def _admit_locked(self, peer: str) -> None:
        if len(self._by_id) >= self.max_total:
            raise SessionsFull(f"this node has {self.max_total} uploads open; retry in {RETRY_AFTER} s")
        if self._per_peer.get(peer, 0) >= self.max_per_peer:
            raise SessionsFull(f"{self.max_per_peer} uploads from your address are open; finish or abort one")

    def add(self, req: UploadRequest, peer: str, reserved: int) -> Upload:
        with self._lock:
            self._admit_locked(peer)
            uid = secrets.token_hex(16)
            up = Upload(uid, req, self.incoming / uid, peer, reserved, self.clock())
            self._by_id[uid] = up
            self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
            return up

    def alive(self, uid: str) -> bool:
        with self._lock:
            return uid in self._by_id

    def get(self, uid: str) -> Upload:
        with self._lock:
            up = self._by_id.get(uid)
        if up is None:
            raise NotFoundError("no such upload (it may have expired or the node restarted)")
        up.touched = self.clock()
        return up

    def remove(self, up: Upload) -> bool:
        """Forget ``up``, delete its temp file, release its space; False if already gone."""
        with self._lock:
            if self._by_id.pop(up.id, None) is None:
                return False
            n = self._per_peer.get(up.peer, 1) - 1
            if n:
                self._per_peer[up.peer] = n
            else:
                self._per_peer.pop(up.peer, None)
        up.done = True
        up.path.unlink(missing_ok=True)
        self._release(up.reserved)
        return True

    def reap(self) -> int:
        """Remove sessions idle longer than ``idle_seconds``; how many were removed."""
        now = self.clock()
        with self._lock:
            stale = [u for u in self._by_id.values() if now - u.touched > self.idle_seconds]
        n = 0
        for up in stale:
            if up.lock.acquire(blocking=False):  # a session being written to is not idle
                try:
                    if self.clock() - up.touched > self.idle_seconds:  # not touched meanwhile
                        n += self.remove(up)
                finally:
                    up.lock.release()
        return n

    def open_file(self, up: Upload) -> int:
        """A descriptor on ``up``'s temp file, created on first use (the caller closes it)."""
        flags = os.O_RDWR | (0 if up.created else os.O_CREAT | os.O_EXCL)
        fd = os.open(up.path, flags, 0o600)
        up.created = True
        return fd
