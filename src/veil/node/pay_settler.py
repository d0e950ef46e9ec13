"""A charging node's settler thread (docs/specs/payments.md, "Settlement and earnings").

It settles (``channel_settle``, close=false) the payers the free credit queues, everything
left in the cheque store from before a restart, and closes channels within ``min_life/4`` of
their expiry; every ``EXPIRY_CHECK`` seconds it also claims accrued leases. ``settle`` and
``settle_all`` are what ``POST /v1/pay/settle`` calls. The wall clock is injected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, VeilError

from .pay_credit import FreeCredit
from .pay_leases import LeaseBook
from .pay_ledger import GateLedger

log = logging.getLogger("veil.payments")

EXPIRY_CHECK = 30.0


class Settler:
    def __init__(self, ledger: GateLedger, credit: FreeCredit, leases: LeaseBook, key: SigningKey, min_life: int,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.ledger = ledger
        self.credit = credit
        self.leases = leases
        self.key = key
        self.min_life = min_life
        self.clock = clock
        self.settles = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pending: list[bytes]) -> None:
        """Run in the background; ``pending``: channels in the cheque store from before a restart."""
        self._thread = threading.Thread(target=self._run, args=(pending,), name="settler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.credit.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, pending: list[bytes]) -> None:
        last_expiry = 0.0
        while not self._stop.is_set():
            try:
                self.ledger.setup()
                if pending:
                    for cid in pending:  # learn them, settle what they owe
                        self.ledger.refresh(cid)
                    pending = []
                    self.settle_all()
                for payer in self.credit.take_queue():
                    try:
                        for cid in self.credit.cids(payer):
                            self.settle(cid, close=False)
                    finally:
                        self.credit.settled(payer)
                if time.monotonic() - last_expiry > EXPIRY_CHECK:
                    last_expiry = time.monotonic()
                    self.close_expiring()
                    self.leases.claim()
            except VeilError as e:
                log.warning("settling failed, will retry: %s", e)
                self.credit.settled(None)
                self._stop.wait(1.0)
                continue
            self.credit.wake.wait(timeout=EXPIRY_CHECK)
            self.credit.wake.clear()

    def close_expiring(self) -> None:
        book, _ = self.ledger.setup()
        now = self.clock()
        for cid in self.credit.all_cids():
            ch = book.channel(cid)
            if ch is not None and book.latest(cid) is not None and now + self.min_life // 4 >= ch.expires:
                self.settle(cid, close=True)

    def settle_all(self) -> list[dict[str, Any]]:
        """Settle every channel holding a cheque newer than the ledger's; one row per settle."""
        book, _ = self.ledger.setup()
        return [r for cid, _ in book.unsettled() if (r := self.settle(cid, close=False)) is not None]

    def settle(self, cid: bytes, close: bool) -> dict[str, Any] | None:
        book, params = self.ledger.setup()
        latest = book.latest(cid)
        if latest is None and not close:
            return None
        try:
            txid, _ = self.ledger.submit_own(self.key, lambda n: book.settle_tx(self.key, n, params.min_fee, cid, close))
        except LedgerError as e:
            if e.code in ("stale_cheque", "unknown_channel"):
                self.ledger.refresh(cid)  # already settled (by `veil node earnings`) or gone
                return None
            raise
        st = self.ledger.client().wait_committed(txid)
        self.settles += 1
        if self.ledger.refresh(cid) is None:
            book.forget(cid)
        log.info("settled channel %s at cheque %s (close=%s)", cid.hex()[:16], latest.seq if latest else "-", close)
        return {"channel": cid, "seq": latest.seq if latest else 0, "height": st.get("height"), "closed": close}
