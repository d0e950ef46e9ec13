"""A charging storage node's payment gate: checks the cheque each block request carries and
persists it; only then does the storage role send the blocks (docs/specs/payments.md).

The storage role calls ``charge(req, si, nbytes, mhash)`` before it opens the share file; a
returned Response (402, or 400 for a malformed cheque) is sent instead of the blocks.
The rules are ``protocol.payments.judge`` and ``ledger.cheque.check_successor``; the
signature is checked by ``ChannelBook.accept`` outside any global lock, so requests on
different channels verify in parallel; requests on one channel are serialised.

The gate's collaborators each have one job: ``pay_ledger`` (ledger client, params, channel
book), ``pay_credit`` (free credit per payer), ``pay_payouts`` (the file's uploader),
``pay_settler`` (the settler thread), ``pay_leases`` (leases). The wall clock is injected.
Config (NodeConfig, read by payments_role): ``price_per_gb``, ``lease_price_per_gb_day``, ``free_credit``, ``validator``
(``NODEID@HOST:PORT[,...]``, every validator), ``min_channel_life``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, VeilError
from veil.ledger.address import address_of
from veil.ledger.cheque import Settled, check_successor, decode_cheque
from veil.ledger.state import OPEN
from veil.net.server import HTTPError, Request, Response, cbor_response
from veil.protocol import payments as pay

from .pay_credit import FreeCredit
from .pay_ledger import GateLedger
from .pay_payouts import PayoutIndex

DEFAULT_FREE_CREDIT = 16 << 20
DEFAULT_MIN_LIFE = 3600
MANIFEST_RETRY = "5"  # seconds a client waits before asking again for a file whose manifest is not here yet


@dataclass
class GateStats:
    free_bytes: int = 0
    paid_bytes: int = 0
    amount: int = 0  # money accepted in cheques since start (before uploader shares)
    refused: int = 0


@dataclass(frozen=True)
class Prices:
    price_per_gb: int
    lease_price_per_gb_day: int = 0
    free_credit: int = DEFAULT_FREE_CREDIT
    min_life: int = DEFAULT_MIN_LIFE


class PaymentGate:
    def __init__(self, key: SigningKey, prices: Prices, ledger: GateLedger, credit: FreeCredit, payouts: PayoutIndex,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.key = key
        self.address = address_of(key.public_key)
        self.prices = prices
        self.ledger = ledger
        self.credit = credit
        self.payouts = payouts
        self.clock = clock
        self.stats = GateStats()
        self._lock = threading.Lock()
        self._chan_locks: dict[bytes, threading.Lock] = {}

    def terms(self) -> pay.Terms:
        _, params = self.ledger.setup()
        p = self.prices
        return pay.Terms(self.address, params.chain_id, p.price_per_gb, p.lease_price_per_gb_day, p.free_credit,
                         p.min_life, self.key.public_key)  # fmt: skip

    def advertised(self) -> dict[str, Any]:
        """Prices for GET /v1/node (no ledger round trip)."""
        p, st = self.prices, self.stats
        return {"payee": self.address, "price_per_gb": p.price_per_gb, "lease_price_per_gb_day": p.lease_price_per_gb_day,
                "free_credit": p.free_credit, "served_free": st.free_bytes, "served_paid": st.paid_bytes,
                "accepted": st.amount}  # fmt: skip

    def _refuse(self, code: str, message: str) -> Response:
        self.stats.refused += 1
        try:
            terms: pay.Terms | None = self.terms()
        except VeilError:
            terms = None
        return cbor_response(pay.refusal(code, message, terms), 402)

    def charge(self, req: Request, si: bytes, nbytes: int, mhash: bytes) -> Response | None:
        """None when the request is paid for (its cheque is on disk); else the answer to send."""
        header = req.headers.get(pay.CHEQUE_HEADER)
        if not header:
            return self._refuse(pay.PAYMENT_REQUIRED, "this node charges for downloads: send a cheque")
        raw = pay.decode_cheque_header(header)
        c = decode_cheque(raw)
        book, params = self.ledger.setup()
        ch = self.ledger.channel(c.channel)
        if ch is None or ch.payee != self.address:
            return self._refuse(pay.CHANNEL_NEEDED, "no open channel to this node with that id")
        if ch.status != OPEN or self.clock() + book.expiry_margin >= ch.expires:
            return self._refuse(pay.CHANNEL_NEEDED, "the channel is closing or about to expire; open a new one")
        with self._chan_lock(c.channel):
            latest = book.latest(c.channel)
            base = Settled.of(latest) if latest is not None else ch.settled()
            try:
                check_successor(base, c, chain=params.chain_id, channel=c.channel, payer=ch.payer,
                                total_deposit=ch.total_deposit, params=params)  # fmt: skip
            except LedgerError as e:
                if e.code == "cheque_over_deposit":
                    ch = self.ledger.refresh(c.channel) or ch  # perhaps topped up meanwhile
                    if c.amount > ch.total_deposit:
                        return self._refuse(pay.DEPOSIT_EXHAUSTED, str(e))
                elif e.code == "stale_cheque":
                    return self._refuse(pay.STALE, str(e))
                else:
                    raise
            payout = self.payouts.lookup(si, mhash)  # the manifest of the slot being read
            if not payout.known and c.amount > base.amount:
                # Who earns the uploader's share is in the manifest: never guess it.
                raise HTTPError(503, "manifest_missing", "this node has no manifest for the file yet; ask again soon",
                                {"Retry-After": MANIFEST_RETRY})  # fmt: skip
            d_free = c.free_bytes - base.free_bytes
            room = self.credit.room(ch.payer, d_free, lambda: self._unsettled_free(ch.payer))
            j = pay.judge(base, c, nbytes, self.prices.price_per_gb, room, ch.payer, payout.address)
            if j.code is not None:
                return self._refuse(j.code, j.message)
            receipt = book.accept(raw, int(self.clock()))  # verifies the signature; on disk when it returns
        st = self.stats
        st.free_bytes += j.honoured_free
        st.paid_bytes += j.paid_bytes
        st.amount += receipt.delta.paid
        if d_free and self._unsettled_free(ch.payer) * 2 >= self.prices.free_credit:
            self.credit.queue(ch.payer)
        return None

    def _chan_lock(self, cid: bytes) -> threading.Lock:
        with self._lock:
            lk = self._chan_locks.get(cid)
            if lk is None:
                lk = self._chan_locks[cid] = threading.Lock()
            return lk

    def _unsettled_free(self, payer: bytes) -> int:
        book = self.ledger.ready_book
        assert book is not None
        total = 0
        for cid in self.credit.cids(payer):
            latest, ch = book.latest(cid), book.channel(cid)
            if latest is not None and ch is not None:
                total += max(0, latest.free_bytes - ch.free_bytes)
        return total
