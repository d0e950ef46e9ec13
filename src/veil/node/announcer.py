"""Announcing what a storage node holds, off the write path and in batches.

A committed share only queues its storage index here; one background thread waits until the
DHT has joined, gathers what is queued for ``window`` seconds, and announces up to ``max_batch``
indexes with one ``DhtDriver.provide_many`` (one lookup per keyspace region and one request per
node instead of a lookup and k requests per index: veil.dht.batch). The next batch starts only
when the last one is out, so under a burst of uploads batches grow instead of lookups piling
up. An index queued again before its batch is taken is announced once. What a batch
announces is read from the store at that moment (``shares_of``), so a share removed meanwhile
is not claimed.

Imports from: veil.errors, veil.net, veil.protocol.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from veil.errors import VeilError
from veil.net.dht_driver import DhtDriver
from veil.protocol.placement import dht_key

log = logging.getLogger("veil.storage")

WINDOW = 1.0  # seconds a batch gathers before it goes out
MAX_BATCH = 4096


class Announcer:
    def __init__(self, dht_of: Callable[[], DhtDriver | None], shares_of: Callable[[bytes], tuple[int, ...]],
                 window: float = WINDOW, max_batch: int = MAX_BATCH) -> None:  # fmt: skip
        self.dht_of, self.shares_of, self.window, self.max_batch = dht_of, shares_of, window, max_batch
        self._queue: dict[bytes, None] = {}  # insertion-ordered set of storage indexes
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self.batches = 0  # for status and tests
        self.announced = 0
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify()

    def add(self, si: bytes) -> None:
        self.add_all((si,))

    def add_all(self, sis: Iterable[bytes]) -> None:
        with self._cv:
            for si in sis:
                self._queue[si] = None
            self._cv.notify()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while not self._stop.is_set():
            dht = self.dht_of()
            if dht is None or not dht.joined.wait(0.5):
                if self._stop.wait(0.5 if dht is None else 0):
                    return
                continue
            with self._cv:
                while not self._queue and not self._stop.is_set():
                    self._cv.wait()
            if self._stop.wait(self.window):
                return
            with self._cv:
                batch = list(self._queue)[: self.max_batch]
                for si in batch:
                    del self._queue[si]
            try:
                items = [(dht_key(si), shares) for si in batch if (shares := self.shares_of(si))]
                if items:
                    dht.provide_many(items)
                self.batches += 1
                self.announced += len(items)
            except (VeilError, OSError) as e:  # the shares are stored; the republish rounds retry
                log.info("announcing %d storage indexes failed: %s", len(batch), e)
