"""A charging storage node's payment gate: checks the cheque each block request carries,
persists it, and only then lets the storage role send the blocks; settles on the ledger.

The storage role calls ``charge(req, si, nbytes)`` before it opens the share file; a
returned Response (402, or 400 for a malformed cheque) is sent instead of the blocks.
The rules are ``protocol.payments.judge`` and ``ledger.cheque.check_successor``; the
signature is checked by ``ChannelBook.accept`` outside any global lock, so requests on
different channels verify in parallel; requests on one channel are serialised.

Free-tier bytes are worth something only once the ledger has charged them against the
payer's allowance, so the node takes at most ``free_credit`` unsettled free bytes per
payer, and settles (``channel_settle``, close=false) as soon as half of that is used.
A settler thread also settles everything left over from before a restart, and closes
channels that near their expiry. Config (NodeConfig): ``price_per_gb``, ``lease_price_per_gb_day``,
``free_credit``, ``validator`` (``NODEID@HOST:PORT[,...]``, every validator), ``min_channel_life``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veil.client.ledger_client import LedgerClient
from veil.durable import write_atomic
from veil.errors import LedgerError, UsageError, VeilError
from veil.format import cbor
from veil.format.fields import get_bytes, require_map
from veil.format.manifest import parse_manifest
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.channelbook import ChannelBook
from veil.ledger.cheque import Settled, check_successor, decode_cheque
from veil.ledger.cheque_store import SqliteChequeStore
from veil.ledger.params import Params
from veil.ledger.state import OPEN, Channel
from veil.net.server import Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.protocol import payments as pay

log = logging.getLogger("veil.payments")

DEFAULT_FREE_CREDIT = 16 << 20
DEFAULT_MIN_LIFE = 3600
SETTLE_WAIT = 20.0
EXPIRY_CHECK = 30.0


@dataclass
class _Payer:
    allowance: int = 0  # the payer's allowance left, as the ledger last said
    settling: bool = False


@dataclass
class GateStats:
    free_bytes: int = 0
    paid_bytes: int = 0
    amount: int = 0  # money accepted in cheques since start (before uploader shares)
    refused: int = 0
    settles: int = 0


class PaymentGate:
    def __init__(self, ctx: NodeContext, payout_of: Callable[[bytes, bytes], bytes | None]) -> None:
        cfg = ctx.config
        self.key = ctx.key
        self.address = address_of(ctx.key.public_key)
        if cfg.price_per_gb is None or not cfg.validator:
            raise UsageError("the payments role needs --price-per-gb and --validator")
        self.price = cfg.price_per_gb
        self.lease_price = cfg.lease_price_per_gb_day or 0
        self.free_credit = cfg.free_credit or DEFAULT_FREE_CREDIT
        self.min_life = cfg.min_channel_life or DEFAULT_MIN_LIFE
        self.validator = cfg.validator
        self.payout_of = payout_of
        self.store = SqliteChequeStore(ctx.data_dir / "payments" / "cheques.db")
        self._stored = [cid for cid, _ in self.store.load()]
        self._ledger: LedgerClient | None = None
        self._params: Params | None = None
        self._book: ChannelBook | None = None
        self._lock = threading.Lock()  # guards the dicts below and lazy set-up
        self._cond = threading.Condition(self._lock)
        self._chan_locks: dict[bytes, threading.Lock] = {}
        self._payers: dict[bytes, _Payer] = {}
        self._cids_of: dict[bytes, set[bytes]] = {}
        self._settle_queue: set[bytes] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = GateStats()
        self._leases_path = ctx.data_dir / "payments" / "leases.json"
        self.leases: set[bytes] = self._load_leases()
        self.lease_claimed = 0  # claimed since start

    # -- set-up --------------------------------------------------------------------------

    def _ledger_client(self) -> LedgerClient:
        with self._lock:
            if self._ledger is None:
                self._ledger = LedgerClient.from_endpoint(self.validator)
            return self._ledger

    def _setup(self) -> tuple[ChannelBook, Params]:
        if self._book is not None and self._params is not None:
            return self._book, self._params
        params = self._ledger_client().genesis().params
        with self._lock:
            if self._book is None:
                self._params = params
                self._book = ChannelBook(params, self.address, self.store, expiry_margin=self.min_life // 2)
            assert self._params is not None
            return self._book, self._params

    def terms(self) -> pay.Terms:
        _, params = self._setup()
        return pay.Terms(self.address, params.chain_id, self.price, self.lease_price, self.free_credit, self.min_life)

    def advertised(self) -> dict[str, Any]:
        """Prices for GET /v1/node (no ledger round trip)."""
        return {"payee": self.address, "price_per_gb": self.price, "lease_price_per_gb_day": self.lease_price,
                "free_credit": self.free_credit, "served_free": self.stats.free_bytes,
                "served_paid": self.stats.paid_bytes, "accepted": self.stats.amount}  # fmt: skip

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="settler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.store.close()

    # -- the hot path ----------------------------------------------------------------------

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
        book, params = self._setup()
        ch = self._channel(book, c.channel)
        if ch is None or ch.payee != self.address:
            return self._refuse(pay.CHANNEL_NEEDED, "no open channel to this node with that id")
        if ch.status != OPEN or time.time() + book.expiry_margin >= ch.expires:
            return self._refuse(pay.CHANNEL_NEEDED, "the channel is closing or about to expire; open a new one")
        with self._chan_lock(c.channel):
            latest = book.latest(c.channel)
            base = Settled.of(latest) if latest is not None else ch.settled()
            try:
                check_successor(base, c, chain=params.chain_id, channel=c.channel, payer=ch.payer,
                                total_deposit=ch.total_deposit, params=params)  # fmt: skip
            except LedgerError as e:
                if e.code == "cheque_over_deposit":
                    ch = self._refresh(book, c.channel) or ch  # perhaps topped up meanwhile
                    if c.amount > ch.total_deposit:
                        return self._refuse(pay.DEPOSIT_EXHAUSTED, str(e))
                elif e.code == "stale_cheque":
                    return self._refuse(pay.STALE, str(e))
                else:
                    raise
            payout = self.payout_of(si, mhash)  # the manifest of the slot being read
            d_free = c.free_bytes - base.free_bytes
            room = self._free_room(ch.payer, d_free)
            j = pay.judge(base, c, nbytes, self.price, room, ch.payer, payout)
            if j.code is not None:
                return self._refuse(j.code, j.message)
            receipt = book.accept(raw, int(time.time()))  # verifies the signature; on disk when it returns
        st = self.stats
        st.free_bytes += j.honoured_free
        st.paid_bytes += j.paid_bytes
        st.amount += receipt.delta.paid
        if d_free and self._unsettled_free(ch.payer) * 2 >= self.free_credit:
            self._queue_settle(ch.payer)
        return None

    def _chan_lock(self, cid: bytes) -> threading.Lock:
        with self._lock:
            lk = self._chan_locks.get(cid)
            if lk is None:
                lk = self._chan_locks[cid] = threading.Lock()
            return lk

    def _channel(self, book: ChannelBook, cid: bytes) -> Channel | None:
        ch = book.channel(cid)
        return ch if ch is not None else self._refresh(book, cid)

    def _refresh(self, book: ChannelBook, cid: bytes) -> Channel | None:
        """Learn a channel (and its payer's allowance) from the ledger."""
        client = self._ledger_client()
        ch = client.channel(cid)
        if ch is None or ch.payee != self.address:
            return None
        book.track(cid, ch)
        allowance = int(client.account(ch.payer)["allowance_left"])
        with self._lock:
            self._payers.setdefault(ch.payer, _Payer()).allowance = allowance
            self._cids_of.setdefault(ch.payer, set()).add(cid)
        return book.channel(cid)

    def _unsettled_free(self, payer: bytes) -> int:
        book = self._book
        assert book is not None
        with self._lock:
            cids = list(self._cids_of.get(payer, ()))
        total = 0
        for cid in cids:
            latest, ch = book.latest(cid), book.channel(cid)
            if latest is not None and ch is not None:
                total += max(0, latest.free_bytes - ch.free_bytes)
        return total

    def _free_room(self, payer: bytes, wanted: int) -> int:
        """Free bytes the node takes from ``payer`` now; waits for a settle in flight if that helps."""
        deadline = time.monotonic() + SETTLE_WAIT
        while True:
            unsettled = self._unsettled_free(payer)
            with self._lock:
                p = self._payers.setdefault(payer, _Payer())
                room = min(self.free_credit, p.allowance) - unsettled
                if room >= wanted or wanted <= 0 or unsettled == 0 or time.monotonic() > deadline:
                    return max(0, room)
                if not p.settling:
                    self._settle_queue.add(payer)
                    p.settling = True
                    self._wake.set()
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _queue_settle(self, payer: bytes) -> None:
        with self._lock:
            p = self._payers.setdefault(payer, _Payer())
            if not p.settling:
                p.settling = True
                self._settle_queue.add(payer)
                self._wake.set()

    # -- leases --------------------------------------------------------------------------------

    def _load_leases(self) -> set[bytes]:
        try:
            return {bytes.fromhex(x) for x in json.loads(self._leases_path.read_text())}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as e:
            log.error("cannot read %s: %s", self._leases_path, e)
            return set()

    def _save_leases(self) -> None:
        write_atomic(self._leases_path, json.dumps(sorted(x.hex() for x in self.leases)).encode())

    def add_lease(self, lid: bytes, holds: Callable[[bytes, int], bool]) -> None:
        """An uploader tells the node about a lease paying it; checked on the ledger, then kept."""
        le = self._ledger_client().lease(lid)
        if le is None or le.payee != self.address:
            raise LedgerError("no such lease paying this node", "unknown_lease")
        if not holds(le.si, le.shnum):
            raise LedgerError("this node does not hold the leased share", "bad_lease")
        with self._lock:
            self.leases.add(lid)
            self._save_leases()

    def claim_leases(self) -> int:
        """Claim what every lease has accrued; returns the amount claimed (fees not counted)."""
        if not self.leases:
            return 0
        _, params = self._setup()
        client = self._ledger_client()
        total = 0
        for lid in sorted(self.leases):
            le = client.lease(lid)
            if le is None:
                with self._lock:
                    self.leases.discard(lid)
                    self._save_leases()
                continue
            got = le.claimable(int(client.info()["now"]))
            if got <= params.min_fee:
                continue
            self._submit_own(functools.partial(txm.lease_claim, self.key, params.chain_id, fee=params.min_fee, lease=lid))
            total += got
        self.lease_claimed += total
        return total

    def _submit_own(self, build: Callable[[int], bytes]) -> None:
        self._ledger_client().submit_with_nonce(self.key, build)

    # -- settling ------------------------------------------------------------------------------

    def _run(self) -> None:
        pending = list(self._stored)
        last_expiry = 0.0
        while not self._stop.is_set():
            try:
                book, _ = self._setup()
                if pending:
                    # Channels left from before a restart: learn them, settle what they owe.
                    for cid in pending:
                        self._refresh(book, cid)
                    pending = []
                    self.settle_all()
                with self._lock:
                    payers, self._settle_queue = self._settle_queue, set()
                for payer in payers:
                    with self._lock:
                        cids = list(self._cids_of.get(payer, ()))
                    try:
                        for cid in cids:
                            self.settle(cid, close=False)
                    finally:
                        with self._lock:
                            self._payers.setdefault(payer, _Payer()).settling = False
                            self._cond.notify_all()
                if time.monotonic() - last_expiry > EXPIRY_CHECK:
                    last_expiry = time.monotonic()
                    self._close_expiring(book)
                    self.claim_leases()
            except VeilError as e:
                log.warning("settling failed, will retry: %s", e)
                with self._lock:
                    for p in self._payers.values():
                        p.settling = False
                    self._cond.notify_all()
                self._stop.wait(1.0)
                continue
            self._wake.wait(timeout=EXPIRY_CHECK)
            self._wake.clear()

    def _close_expiring(self, book: ChannelBook) -> None:
        now = time.time()
        for cid in list(self._all_cids()):
            ch = book.channel(cid)
            if ch is not None and book.latest(cid) is not None and now + self.min_life // 4 >= ch.expires:
                self.settle(cid, close=True)

    def _all_cids(self) -> set[bytes]:
        with self._lock:
            return set().union(*self._cids_of.values()) if self._cids_of else set()

    def settle_all(self) -> list[dict[str, Any]]:
        """Settle every channel holding a cheque newer than the ledger's; one row per settle."""
        book, _ = self._setup()
        return [r for cid, _ in book.unsettled() if (r := self.settle(cid, close=False)) is not None]

    def settle(self, cid: bytes, close: bool) -> dict[str, Any] | None:
        book, params = self._setup()
        latest = book.latest(cid)
        if latest is None and not close:
            return None
        client = self._ledger_client()
        try:
            txid, _ = client.submit_with_nonce(self.key, lambda n: book.settle_tx(self.key, n, params.min_fee, cid, close))
        except LedgerError as e:
            if e.code in ("stale_cheque", "unknown_channel"):
                self._refresh(book, cid)  # already settled (by `veil node earnings`) or gone
                return None
            raise
        st = client.wait_committed(txid)
        self.stats.settles += 1
        ch = self._refresh(book, cid)
        if ch is None:
            book.forget(cid)
        log.info("settled channel %s at cheque %s (close=%s)", cid.hex()[:16], latest.seq if latest else "-", close)
        return {"channel": cid, "seq": latest.seq if latest else 0, "height": st.get("height"), "closed": close}

    def earnings(self) -> dict[str, Any]:
        """What the node's channels hold, settled and not (for `veil node earnings`)."""
        book, params = self._setup()
        rows = []
        for cid in sorted(self._all_cids()):
            ch = book.channel(cid)
            if ch is None:
                continue
            latest = book.latest(cid)
            s = Settled.of(latest) if latest is not None else ch.settled()
            rows.append({"channel": cid, "payer": ch.payer, "free_bytes": s.free_bytes, "paid_bytes": s.paid_bytes,
                         "amount": s.amount, "uploaders": params.uploader_share(sum(v for _, v in s.uploaders)),
                         "settled_seq": ch.seq, "seq": s.seq, "expires": ch.expires})  # fmt: skip
        client = self._ledger_client()
        leases = []
        now = int(client.info()["now"])
        for lid in sorted(self.leases):
            le = client.lease(lid)
            if le is not None:
                leases.append({"lease": lid, "si": le.si, "shnum": le.shnum, "amount": le.amount,
                               "claimed": le.claimed, "claimable": le.claimable(now), "status": le.status,
                               "end": le.end})  # fmt: skip
        return {"channels": rows, "leases": leases, "stats": self.advertised(), "pool_price_per_gb": params.price_per_gb}


class PaymentsRole:
    """The ``payments`` role: offers the gate to the storage role (``ctx.services.payments``)
    and serves the payment API:

        GET  /v1/pay/terms      this node's Terms (CBOR)
        GET  /v1/pay/earnings   its channels (cheque totals, settled or not) and leases
        POST /v1/pay/settle     settle every channel holding an unsettled cheque, claim leases, now
        POST /v1/pay/leases     CBOR {lease: id}: a lease paying this node to keep a share
    """

    name = "payments"

    def __init__(self) -> None:
        self.gate: PaymentGate | None = None
        self.ctx: NodeContext | None = None
        self._payouts: dict[tuple[bytes, bytes], bytes | None] = {}

    def attach(self, ctx: NodeContext, router: Router) -> None:
        if ctx.config.price_per_gb is None or not ctx.config.validator:
            raise UsageError("the payments role needs --price-per-gb and --validator")
        self.ctx = ctx
        self.gate = PaymentGate(ctx, self._payout)
        ctx.services.payments = self.gate
        router.add("GET", "/v1/pay/terms", self._terms)
        router.add("GET", "/v1/pay/earnings", self._earnings)
        router.add("POST", "/v1/pay/settle", self._settle)
        router.add("POST", "/v1/pay/leases", self._add_lease)

    def _payout(self, si: bytes, mhash: bytes) -> bytes | None:
        """The uploader payout address in the manifest of slot (si, mhash) (cached once known)."""
        if (si, mhash) in self._payouts:
            return self._payouts[(si, mhash)]
        store = self.ctx.services.store if self.ctx is not None else None
        raw = store.manifest(si, mhash) if store is not None else None
        if raw is None:
            return None  # not here (yet): never cached
        payout = parse_manifest(raw).payout
        if len(self._payouts) > 4096:
            self._payouts.clear()
        self._payouts[(si, mhash)] = payout
        return payout

    def start(self) -> None:
        assert self.gate is not None
        self.gate.start()

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.stop()

    def status(self) -> dict[str, Any]:
        assert self.gate is not None
        return self.gate.advertised()

    def _terms(self, req: Request) -> Response:
        assert self.gate is not None
        return cbor_response(self.gate.terms().to_wire())

    def _earnings(self, req: Request) -> Response:
        assert self.gate is not None
        return cbor_response(self.gate.earnings())

    def _settle(self, req: Request) -> Response:
        assert self.gate is not None
        return cbor_response({"settled": self.gate.settle_all(), "leases_claimed": self.gate.claim_leases()})

    def _add_lease(self, req: Request) -> Response:
        assert self.gate is not None
        m = require_map(cbor.decode(req.read_body(1024), 1024), "lease notice", {"lease"})
        self.gate.add_lease(get_bytes(m, "lease", "lease notice", 32), self._holds)
        return cbor_response({})

    def _holds(self, si: bytes, shnum: int) -> bool:
        store = self.ctx.services.store if self.ctx is not None else None
        return store is not None and bool(store.holds(si, shnum))
