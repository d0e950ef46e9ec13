"""The downloader's side of pay as you download (docs/specs/payments.md).

One ``Payer`` per download (or benchmark run) is shared by the fetcher's source threads.
Per node it runs the small machine of ``protocol.payments`` (UNKNOWN → FREE, or
NEED_CHANNEL → PAYING ...): the first request goes without a cheque; a node that charges
answers 402 with its terms; the payer then reuses or opens a channel to it and from then on
every request carries the cumulative cheque paying for exactly the blocks asked for.

Free-tier bytes are claimed first, up to the allowance the ledger says is left (minus what
this wallet's cheques claimed and nodes have not settled yet); then the deposit pays, at
the node's price, with the whole amount attributed to the file's uploader (the ledger gives
the uploader its share). Channel state is written before each cheque is signed
(client/channels.py). Nothing is signed that would take the money spent past ``max_spend``:
the payer stops instead, and says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from veil.errors import LedgerError, PaymentRequiredError, UsageError, VeilError
from veil.format import cbor
from veil.format.remote_text import clean
from veil.ledger import tx as txm
from veil.ledger.amount import UNIT, format_amount
from veil.ledger.state import OPEN, channel_id
from veil.net.client import raise_for_reply
from veil.protocol import payments as pay
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.payments import PayEvent, PayState
from veil.protocol.transport import RangeAnswer

from .channels import PayerChannels
from .ledger_client import LedgerClient
from .wallet import Wallet

DEFAULT_DEPOSIT = 1 * UNIT  # the most a new channel locks
DEFAULT_DEPOSIT_FLOOR = UNIT // 1000  # the least it locks (a channel costs a fee: not worth opening for less)
HEADROOM = 8  # a planned deposit covers the expected bytes plus 1/HEADROOM of them (hedges, retries)


def sized_deposit(expected_bytes: int | None, price_per_gb: int, floor: int, cap: int) -> int:
    """What a new channel to a node should lock: the expected spend there (its share of the bytes
    still to fetch, at its price, with headroom), at least ``floor``, at most ``cap``; ``cap``
    when nothing is known about the download (docs/specs/payments.md, "Deposits")."""
    if expected_bytes is None:
        return cap
    cost = pay.paid_cost(expected_bytes + expected_bytes // HEADROOM, price_per_gb)
    return max(1, min(cap, max(floor, cost)))
DEFAULT_CHANNEL_LIFE = 7 * 86_400
MAX_ATTEMPTS = 6


class SpendLimitError(PaymentRequiredError):
    """The download stopped before spending more than the limit you set (--max-spend)."""


class BudgetError(PaymentRequiredError):
    """A spending rule of the caller (a gateway's price ceiling or budgets) refused this payment;
    the payer itself goes on serving other downloads."""


class PriceCeilingError(BudgetError):
    """A node asked more per GB than the caller pays; the other holders are asked instead."""


# Called with (money the next cheque adds, the node's terms) before anything is signed; raises
# BudgetError to refuse. A gateway uses it for per-visitor and per-file budgets.
Guard = Callable[[int, pay.Terms], None]


class Paying(Protocol):
    """What the fetcher needs from a payer (client/download.py): a ``Payer``, or a ``GuardedPayer``."""

    stopped: PaymentRequiredError | None

    def fetch(self, send: Callable[[dict[str, str] | None], RangeAnswer], node: NodeInfo, nbytes: int,
              uploader: bytes | None) -> RangeAnswer: ...  # fmt: skip


@dataclass
class _Session:
    node: NodeInfo
    state: PayState = PayState.UNKNOWN
    terms: pay.Terms | None = None
    cid: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Payer:
    def __init__(
        self,
        unlock: Callable[[], Wallet],
        ledger: LedgerClient,
        max_spend: int,
        deposit: int = DEFAULT_DEPOSIT,
        channel_life: int = DEFAULT_CHANNEL_LIFE,
        on_change: Callable[[], None] | None = None,
        deposit_floor: int = DEFAULT_DEPOSIT_FLOOR,
    ) -> None:
        self._unlock = unlock
        self.ledger = ledger
        self.max_spend = max_spend
        self.deposit = max(1, deposit)
        self.deposit_floor = max(1, min(deposit_floor, self.deposit))
        self.per_node: int | None = None  # bytes expected from each source (plan()); None: unknown
        self.channel_life = channel_life
        self.on_change = on_change
        self.spent = 0  # money signed away in cheques by this payer
        self.free_used = 0  # free-tier bytes claimed
        self.paid_bytes = 0
        self.channels_opened = 0
        self.stopped: PaymentRequiredError | None = None  # why the payer stopped, if it did
        self._free_left: int | None = None
        self._wallet: Wallet | None = None
        self._book: PayerChannels | None = None
        self._lock = threading.Lock()  # counters, wallet, free budget
        self._tx_lock = threading.Lock()  # nonce order of this wallet's transactions
        self._sessions: dict[bytes, _Session] = {}

    def plan(self, nbytes: int, sources: int) -> None:
        """The download will read about ``nbytes`` of blocks, spread over ``sources`` nodes: new
        channels lock what that costs (sized_deposit), not the flat ``deposit``."""
        self.per_node = -(-max(0, nbytes) // max(1, sources))

    def close(self) -> None:
        if self._book is not None:
            self._book.close()

    # -- the fetch hook ---------------------------------------------------------------------

    def fetch(self, send: Callable[[dict[str, str] | None], RangeAnswer], node: NodeInfo, nbytes: int,
              uploader: bytes | None, guard: Guard | None = None) -> RangeAnswer:  # fmt: skip
        """Read ``nbytes`` of blocks from ``node`` with ``send`` (one range read through the
        storage transport, with these headers), paying if it charges (and ``guard`` agrees)."""
        with self._lock:
            s = self._sessions.get(node.node_id)
            if s is None:
                s = self._sessions[node.node_id] = _Session(node)
        with s.lock:
            last = ""
            for _ in range(MAX_ATTEMPTS):
                if self.stopped is not None:
                    raise self.stopped
                headers: dict[str, str] = {}
                if s.state is PayState.PAYING:
                    try:
                        cheque = self._sign(s, nbytes, uploader, guard)
                    except SpendLimitError:
                        s.state = pay.step(s.state, PayEvent.LIMIT)
                        raise
                    if cheque is None:  # the deposit is short: top up, then sign
                        s.state = pay.step(s.state, PayEvent.REFUSED_DEPOSIT)
                        self._topup(s, nbytes)
                        continue
                    headers[pay.CHEQUE_HEADER] = pay.encode_cheque_header(cheque)
                r = send(headers)
                if r.status == 200:
                    s.state = pay.step(s.state, PayEvent.SERVED)
                    return r
                if r.status != 402:
                    raise_for_reply(r.status, bytes(r.data), node.label)
                ref = pay.parse_refusal(cbor.decode(bytes(r.data), 64 * 1024))
                last = clean(ref.message)
                if ref.terms is not None:
                    s.terms = pay.check_terms(ref.terms, node.node_id)  # never pay (or lease) a foreign payee
                ev = pay.event_for(ref.code)
                if ev is PayEvent.REFUSED_ALLOWANCE:
                    with self._lock:
                        self._free_left = 0
                s.state = pay.step(s.state, ev)
                if s.state is PayState.NEED_CHANNEL:
                    self._channel(s, replace=ev is PayEvent.REFUSED_CHANNEL)
                elif s.state is PayState.NEED_TOPUP:
                    self._topup(s, nbytes)
            raise PaymentRequiredError(f"{node.label} keeps refusing payment: {last}")

    # -- cheques ------------------------------------------------------------------------------

    def _wallet_book(self) -> tuple[Wallet, PayerChannels]:
        with self._lock:
            if self._wallet is None:
                try:
                    self._wallet = self._unlock()
                except UsageError as e:
                    self.stopped = PaymentRequiredError(
                        f"the nodes holding this file charge for downloads, and there is no wallet to pay with: "
                        f"{e} (each account downloads its free allowance at no cost)"
                    )
                    raise self.stopped from e
                except VeilError as e:
                    self.stopped = PaymentRequiredError(f"the wallet could not be unlocked to pay a node: {e}")
                    raise self.stopped from e
                except Exception as e:  # e.g. no terminal to ask the passphrase on: never kill a fetch thread
                    self.stopped = PaymentRequiredError(
                        f"the wallet could not be unlocked to pay a node ({e.__class__.__name__}); "
                        "set VEIL_PASSPHRASE for scripts"
                    )
                    raise self.stopped from e
                self._book = PayerChannels(self._wallet.channels_path, self._wallet.key)
            assert self._book is not None
            return self._wallet, self._book

    def _free_budget(self) -> int:
        """Allowance left on the ledger minus what this wallet claimed that nodes have not settled."""
        w, book = self._wallet_book()
        acct = self.ledger.account(w.address)
        settled: dict[bytes, int] = {cid: ch.free_bytes for cid, ch in acct["channels"] if ch.payer == w.address}
        unsettled = sum(max(0, pc.free_bytes - settled[pc.id]) for pc in book.all() if pc.id in settled)
        return max(0, int(acct["allowance_left"]) - unsettled)

    def _sign(self, s: _Session, nbytes: int, uploader: bytes | None, guard: Guard | None = None) -> bytes | None:
        """The next cheque for ``nbytes`` more; None if the deposit must be topped up first."""
        assert s.cid is not None and s.terms is not None
        w, book = self._wallet_book()
        if self._free_left is None:
            budget = self._free_budget()
            with self._lock:
                if self._free_left is None:
                    self._free_left = budget
        with self._lock:
            assert self._free_left is not None
            free = min(nbytes, self._free_left)
            paid = nbytes - free
            pc = book.get(s.cid)
            if pc is None:
                raise LedgerError("this wallet lost track of its channel", "unknown_channel")
            delta = max(0, pay.paid_cost(pc.paid_bytes + paid, s.terms.price_per_gb) - pc.amount)
            if self.spent + delta > self.max_spend:
                self.stopped = SpendLimitError(
                    f"stopped: the spending limit of {format_amount(self.max_spend)} VEIL (--max-spend) would be "
                    f"passed; spent {format_amount(self.spent)} VEIL on {self.paid_bytes} paid bytes after "
                    f"{self.free_used} free bytes. Raise --max-spend to fetch the rest."
                )
                raise self.stopped
            if delta > pc.remaining:
                return None
            if guard is not None:
                guard(delta, s.terms)  # BudgetError: nothing signed, nothing counted
            self._free_left -= free
            self.spent += delta
            self.free_used += free
            self.paid_bytes += paid
            # Persisted (inside pay) before it is signed.
            cheque = book.pay(s.cid, delta, free, paid, uploader if uploader != w.address else None)
        if self.on_change is not None:
            self.on_change()
        return cheque.raw

    # -- channels ------------------------------------------------------------------------------

    def _submit(self, build: Callable[[int], bytes]) -> dict[str, object]:
        """Submit a transaction of this wallet (the ledger client's nonce helper); it is in a block on return."""
        w, _ = self._wallet_book()
        with self._tx_lock:
            try:
                txid, nonce = self.ledger.submit_with_nonce(w.key, build)
            except LedgerError as e:
                if e.code == "insufficient_funds":
                    self.stopped = PaymentRequiredError(
                        f"your balance is too low to lock a deposit for this download ({e}); "
                        "add money to the wallet (devnet: `veil devnet faucet`)"
                    )
                    raise self.stopped from e
                raise
        st = self.ledger.wait_committed(txid)
        st["nonce"] = nonce
        return st

    def _channel(self, s: _Session, replace: bool) -> None:
        """Reuse an open channel of this wallet to the node, or open one; then PAYING."""
        assert s.terms is not None
        terms = s.terms
        w, book = self._wallet_book()
        chain = self.ledger.chain
        if terms.chain != chain:
            raise PaymentRequiredError(f"{s.node.label} settles on chain {terms.chain!r}, not {chain!r}")
        if terms.payee == w.address:
            raise PaymentRequiredError(f"{s.node.label} is paid by this wallet's own address")
        now = int(time.time())
        if replace and s.cid is not None:
            book.forget(s.cid)
        s.cid = None
        for pc in book.all():
            if pc.payee != terms.payee or pc.chain != chain or pc.expires <= now + terms.min_life:
                continue
            ch = self.ledger.channel(pc.id)
            if ch is not None and ch.status == OPEN and ch.payee == terms.payee:
                book.record(pc.id, chain, ch)
                s.cid = pc.id
                break
        if s.cid is None:
            params = self.ledger.genesis().params
            expires = now + max(self.channel_life, 2 * terms.min_life)
            deposit = sized_deposit(self.per_node, terms.price_per_gb, self.deposit_floor, self.deposit)
            fee = params.min_fee
            acct = self.ledger.account(w.address)
            if acct["balance"] < deposit + fee and acct["allowance_left"] > 0 and acct.get("free_opens_left", 0) > 0:
                deposit, fee = 0, 0  # a free-tier channel: free bytes need no deposit and no fee
            st = self._submit(lambda n: txm.channel_open(w.key, chain, n, fee, terms.payee, deposit, expires))
            cid = channel_id(w.address, int(str(st["nonce"])))
            ch = self.ledger.channel(cid)
            if ch is None:
                raise LedgerError("the channel was opened but the ledger does not show it", "unknown_channel")
            book.record(cid, chain, ch)
            s.cid = cid
            with self._lock:
                self.channels_opened += 1
        s.state = pay.step(s.state, PayEvent.CHANNEL_READY)

    def _topup(self, s: _Session, nbytes: int) -> None:
        assert s.terms is not None
        if s.cid is None:
            s.state = PayState.NEED_CHANNEL
            self._channel(s, replace=False)
            return
        w, book = self._wallet_book()
        chain = self.ledger.chain
        params = self.ledger.genesis().params
        need = pay.paid_cost(nbytes, s.terms.price_per_gb) + 1
        amount = max(sized_deposit(self.per_node, s.terms.price_per_gb, self.deposit_floor, self.deposit), need)
        cid = s.cid
        self._submit(lambda n: txm.channel_topup(w.key, chain, n, params.min_fee, cid, amount))
        ch = self.ledger.channel(cid)
        if ch is None:
            s.state = PayState.NEED_CHANNEL
            self._channel(s, replace=True)
            return
        book.record(cid, chain, ch)
        s.state = pay.step(PayState.NEED_TOPUP, PayEvent.CHANNEL_READY)

    def summary(self) -> str:
        return (f"{self.free_used} free bytes, {self.paid_bytes} paid bytes, {format_amount(self.spent)} VEIL spent"
                + (f", {self.channels_opened} channels opened" if self.channels_opened else ""))  # fmt: skip


class GuardedPayer:
    """One download through a shared ``Payer`` under a caller's spending rule (``guard``): a
    refusal stops this download only (``stopped``), never the shared payer."""

    def __init__(self, payer: Payer, guard: Guard) -> None:
        self.payer = payer
        self.guard = guard
        self._stopped: PaymentRequiredError | None = None

    @property
    def stopped(self) -> PaymentRequiredError | None:
        return self._stopped or self.payer.stopped

    @stopped.setter
    def stopped(self, value: PaymentRequiredError | None) -> None:
        self._stopped = value

    def fetch(self, send: Callable[[dict[str, str] | None], RangeAnswer], node: NodeInfo, nbytes: int,
              uploader: bytes | None) -> RangeAnswer:  # fmt: skip
        try:
            return self.payer.fetch(send, node, nbytes, uploader, guard=self.guard)
        except BudgetError as e:
            # A spent budget explains a failed download better than one overpriced node.
            if self._stopped is None or isinstance(self._stopped, PriceCeilingError):
                self._stopped = e
            raise


def stop_reason(payer: Paying | None, e: VeilError) -> VeilError:
    """The error to report for a failed download: the payer's reason, when it stopped."""
    if payer is not None and payer.stopped is not None:
        return payer.stopped
    return e
