"""The server's request queue, fair across client addresses (no sockets here).

A plain FIFO let one address hold every worker: twenty connections dripping their bodies a
byte a second each kept a worker until the body-rate check cut them off, and everyone else
waited behind them (`veil bench abuse` found it). Here each key (the client's IP) may have at
most ``busy_per_key`` items being served and ``waiting_per_key`` items waiting; keys take turns
(round robin), so an address can slow itself down but not the others.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, maxsize: int, busy_per_key: int, waiting_per_key: int, key: Callable[[T], str]) -> None:
        self.maxsize = maxsize
        self.busy_per_key = max(1, busy_per_key)
        self.waiting_per_key = max(1, waiting_per_key)
        self._key = key
        self._waiting: collections.OrderedDict[str, collections.deque[T]] = collections.OrderedDict()
        self._busy: collections.Counter[str] = collections.Counter()
        self._count = 0
        self._stops = 0
        self._cond = threading.Condition()

    def put_nowait(self, item: T | None) -> None:
        """Queue ``item`` (None asks one worker to stop); ``queue.Full`` past a bound."""
        with self._cond:
            if item is None:
                self._stops += 1
                self._cond.notify()
                return
            k = self._key(item)
            q = self._waiting.get(k)
            if self._count >= self.maxsize or (q is not None and len(q) >= self.waiting_per_key):
                raise queue.Full
            if q is None:
                q = self._waiting[k] = collections.deque()
            q.append(item)
            self._count += 1
            self._cond.notify()

    def _take(self) -> T | None:
        for k, q in self._waiting.items():
            if self._busy[k] < self.busy_per_key:
                item = q.popleft()
                if q:
                    self._waiting.move_to_end(k)  # the next key goes first next time
                else:
                    del self._waiting[k]
                self._busy[k] += 1
                self._count -= 1
                return item
        return None

    def get(self) -> T | None:
        """The next item whose key is under its busy bound, or None when asked to stop."""
        with self._cond:
            while True:
                if self._stops:
                    self._stops -= 1
                    return None
                item = self._take()
                if item is not None:
                    return item
                self._cond.wait()

    def done(self, item: T) -> None:
        """``item`` has been served: its key may have another one."""
        with self._cond:
            k = self._key(item)
            was_full = self._busy[k] >= self.busy_per_key
            self._busy[k] -= 1
            if self._busy[k] <= 0:
                del self._busy[k]
            if was_full and k in self._waiting:
                # Exactly one item became eligible. Waking every idle worker (notify_all) made each
                # finished request cost a thundering herd: ~20% of a busy node's CPU.
                self._cond.notify()

    def qsize(self) -> int:
        with self._cond:
            return self._count
