"""A charging node's free credit per payer (docs/specs/payments.md, "Free allowance").

Free-tier bytes are worth something only once the ledger has charged them against the
payer's allowance, so the node takes at most ``free_credit`` unsettled free bytes per payer
(capped by the allowance the ledger last reported) and asks the settler to settle as soon as
half of that is used. This module keeps that bookkeeping: which channels belong to which
payer, each payer's allowance, the queue of payers to settle, and the wait of a request that
needs a settle in flight. ``unsettled(cids)`` is given by the caller (the channel book).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SETTLE_WAIT = 20.0


@dataclass
class _Payer:
    allowance: int = 0  # the payer's allowance left, as the ledger last said
    settling: bool = False


class FreeCredit:
    def __init__(self, free_credit: int, monotonic: Callable[[], float] = time.monotonic,
                 settle_wait: float = SETTLE_WAIT) -> None:  # fmt: skip
        self.free_credit = free_credit
        self._monotonic = monotonic
        self._settle_wait = settle_wait
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._payers: dict[bytes, _Payer] = {}
        self._cids_of: dict[bytes, set[bytes]] = {}
        self._queue: set[bytes] = set()
        self.wake = threading.Event()  # set when a payer is queued: the settler's alarm

    def learn(self, payer: bytes, cid: bytes, allowance: int) -> None:
        with self._lock:
            self._payers.setdefault(payer, _Payer()).allowance = allowance
            self._cids_of.setdefault(payer, set()).add(cid)

    def cids(self, payer: bytes) -> list[bytes]:
        with self._lock:
            return list(self._cids_of.get(payer, ()))

    def all_cids(self) -> set[bytes]:
        with self._lock:
            return set().union(*self._cids_of.values()) if self._cids_of else set()

    def room(self, payer: bytes, wanted: int, unsettled: Callable[[], int]) -> int:
        """Free bytes the node takes from ``payer`` now; waits for a settle in flight if that helps."""
        deadline = self._monotonic() + self._settle_wait
        while True:
            owed = unsettled()
            with self._lock:
                p = self._payers.setdefault(payer, _Payer())
                room = min(self.free_credit, p.allowance) - owed
                if room >= wanted or wanted <= 0 or owed == 0 or self._monotonic() > deadline:
                    return max(0, room)
                self._queue_locked(payer, p)
                self._cond.wait(timeout=max(0.0, deadline - self._monotonic()))

    def queue(self, payer: bytes) -> None:
        """Ask the settler to settle ``payer``'s channels."""
        with self._lock:
            self._queue_locked(payer, self._payers.setdefault(payer, _Payer()))

    def _queue_locked(self, payer: bytes, p: _Payer) -> None:
        if not p.settling:
            p.settling = True
            self._queue.add(payer)
            self.wake.set()

    def take_queue(self) -> set[bytes]:
        with self._lock:
            payers, self._queue = self._queue, set()
            return payers

    def settled(self, payer: bytes | None = None) -> None:
        """A settle for ``payer`` (None: every payer, after a failure) is over: wake the waiters."""
        with self._lock:
            for p in self._payers.values() if payer is None else [self._payers.setdefault(payer, _Payer())]:
                p.settling = False
            self._cond.notify_all()
