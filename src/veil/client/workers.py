"""A small pool of daemon worker threads for requests whose answers the caller may stop
waiting for (locate, the quick path).

``concurrent.futures`` joins its workers at interpreter exit, so one straggling request (a
node that drips until its deadline) would hold ``veil get`` open long after the file was
written. These workers are daemon threads: a caller that has what it needs returns, and the
process exits; every request still has its own deadline, so a worker is never stuck for good.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class DaemonPool:
    def __init__(self, size: int, name: str) -> None:
        self.size, self.name = size, name
        self._q: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker (exceptions are the callee's to handle)."""
        with self._lock:
            self._q.put((fn, args))
            if self._q.qsize() > self._idle and self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            fn, args = self._q.get()
            with self._lock:
                self._idle -= 1
            try:
                fn(*args)
            except Exception:  # a worker never dies of a callee's bug; the caller times out instead
                pass


POOL = DaemonPool(64, "request")
