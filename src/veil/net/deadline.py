"""Deadlines for whole exchanges: one watchdog thread shuts down sockets whose time is up.

A per-read socket timeout does not bound an exchange: a peer that sends one byte every two
seconds never trips a 30 s read timeout. Each request registers its connection here with an
absolute deadline; when it passes, the watchdog shuts the socket down (``shutdown(2)`` on the
descriptor, which wakes a thread blocked in ``recv``/``send`` at once), and the requester
reports ``DeadlineExceeded``. One thread and one heap serve every connection of the process.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time


class Watch:
    """One registration; ``fired`` tells the requester that the deadline (not the peer) broke it."""

    __slots__ = ("active", "fd", "fired", "when")

    def __init__(self, when: float) -> None:
        self.fd = -1
        self.when = when
        self.fired = False
        self.active = True


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, when: float) -> Watch:
        w = Watch(when)
        with self._cv:
            heapq.heappush(self._heap, (when, next(self._seq), w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="net-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is w:
                self._cv.notify()
        return w

    def arm(self, w: Watch, fd: int) -> None:
        """Attach the socket once it exists (it may be replaced by a reconnect)."""
        with self._cv:
            w.fd = fd
            if w.fired and fd >= 0:  # the deadline passed while connecting
                _shutdown(fd)

    def release(self, w: Watch) -> None:
        """The exchange is over: never touch its socket again (it may be closed and reused)."""
        with self._cv:
            w.active = False
            w.fd = -1

    def _run(self) -> None:
        with self._cv:
            while True:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cv.wait()
                    continue
                when = self._heap[0][0]
                now = time.monotonic()
                if when > now:
                    self._cv.wait(when - now)
                    continue
                _, _, w = heapq.heappop(self._heap)
                w.fired = True
                if w.fd >= 0:
                    _shutdown(w.fd)


def _shutdown(fd: int) -> None:
    try:
        s = socket.socket(fileno=socket.dup(fd))  # shutdown acts on the socket, not the descriptor
        try:
            s.shutdown(socket.SHUT_RDWR)
        finally:
            s.close()
    except OSError:
        pass


WATCHDOG = Watchdog()
