"""The payee's invoice book (SQLite beside the wallet), settling invoices from the ledger, and paying one.

The book (``<wallet>.invoices``) keeps what the payee asked for: id, amount, memo, created,
expires. What was paid is never stored here: it is read from the ledger each time (transfers
to the payee's address whose ``invoice`` field names the id), so the book cannot disagree with
the chain. docs/specs/invoices.md.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from veil.client.ledger_client import LedgerClient
from veil.client.wallet import Wallet
from veil.errors import NotFoundError, UsageError
from veil.ledger import tx as txm
from veil.ledger.block import decode_header
from veil.ledger.invoice import Payment, PaymentRequest
from veil.ledger.tx import INVOICE_ID_SIZE, decode_tx

HISTORY_SCAN = 1000  # the validators' history limit: the latest this many transactions of the payee
_SCHEMA = """CREATE TABLE IF NOT EXISTS invoices (
    id BLOB PRIMARY KEY, payee BLOB NOT NULL, amount INTEGER NOT NULL, memo TEXT,
    created INTEGER NOT NULL, expires INTEGER NOT NULL)"""


def book_path(wallet_path: Path) -> Path:
    return wallet_path.with_name(wallet_path.name + ".invoices")


class InvoiceBook:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, shared by threads (a merchant's server)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(_SCHEMA)
        self.db.commit()
        os.chmod(path, 0o600)

    def close(self) -> None:
        self.db.close()

    def create(self, payee: bytes, amount: int, memo: str | None, lifetime: int) -> tuple[PaymentRequest, int]:
        """A new invoice (random 16-byte id); returns it and its creation time."""
        if lifetime <= 0:
            raise UsageError("--expires must be in the future")
        now = int(self.clock())
        try:
            req = PaymentRequest(payee, amount, os.urandom(INVOICE_ID_SIZE), now + lifetime, memo or None)
        except ValueError as e:
            raise UsageError(f"cannot make that invoice: {e}") from e
        with self._lock, self.db:
            self.db.execute("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)",
                            (req.invoice, payee, amount, req.memo, now, req.expires))  # fmt: skip
        return req, now

    def all(self) -> list[tuple[PaymentRequest, int]]:
        with self._lock:
            rows = self.db.execute("SELECT id, payee, amount, memo, created, expires FROM invoices "
                                   "ORDER BY created DESC, id").fetchall()  # fmt: skip
        return [(PaymentRequest(p, a, i, e, m), c) for i, p, a, m, c, e in rows]

    def get(self, text: str) -> tuple[PaymentRequest, int]:
        """By its id (base32, as printed) or a unique prefix of it."""
        t = text.strip().lower()
        matches = [(r, c) for r, c in self.all() if r.invoice_text.startswith(t)] if t else []
        if not matches:
            raise NotFoundError(f"no invoice {text!r} in {self.path}")
        if len(matches) > 1:
            raise UsageError(f"{text!r} matches {len(matches)} invoices: give more of the id")
        return matches[0]


def invoice_payments(ledger: LedgerClient, payee: bytes, ids: set[bytes]) -> dict[bytes, list[Payment]]:
    """Every transfer to ``payee`` naming one of ``ids``, with its block's time (newest
    ``HISTORY_SCAN`` transactions of the payee)."""
    out: dict[bytes, list[Payment]] = {i: [] for i in ids}
    times: dict[int, int] = {}
    for row in ledger.history(payee, HISTORY_SCAN):
        raw, height = row.get("tx"), row.get("height")
        if not isinstance(raw, bytes) or not isinstance(height, int):
            continue
        t = decode_tx(raw)
        if t.kind != txm.TRANSFER or t.to != payee or t.invoice not in out:
            continue
        if height not in times:
            headers = ledger.headers(height, 1)
            if not headers:
                continue
            times[height] = decode_header(headers[0]).time
        out[t.invoice].append(Payment(t.txid, t.sender, t.amount, height, times[height]))
    return out


def pay_request(ledger: LedgerClient, wallet: Wallet, req: PaymentRequest, fee: int | None = None,
                now: float | None = None) -> tuple[bytes, int]:  # fmt: skip
    """Pay a parsed request from ``wallet`` (refused once expired); returns (tx id, block height)."""
    if req.expired(time.time() if now is None else now):
        raise UsageError(f"this payment request expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(req.expires))}; "
                         "ask the payee for a new one")  # fmt: skip
    params = ledger.genesis().params
    f = params.min_fee if fee is None else fee
    key = wallet.key
    txid, _ = ledger.submit_with_nonce(
        key, lambda n: txm.transfer(key, params.chain_id, n, f, req.payee, req.amount, req.memo, req.invoice))
    st = ledger.wait_committed(txid)
    return txid, int(st.get("height") or 0)


