"""The payer side of payment channels: running totals kept on disk, written *before* each
cheque is signed, so a crash never lets the client sign two different cheques with one
sequence number, nor forget what it already promised.

SQLite (WAL, synchronous=FULL) next to the wallet (``<wallet>.channels``). Signing is
deterministic (Ed25519), so re-signing the persisted state after a crash yields the very
same cheque.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, PaymentRequiredError
from veil.format import cbor
from veil.ledger.cheque import Cheque, make_cheque
from veil.ledger.state import Channel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    id BLOB PRIMARY KEY, chain TEXT NOT NULL, payee BLOB NOT NULL, deposit INTEGER NOT NULL,
    expires INTEGER NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL,
    free_bytes INTEGER NOT NULL, paid_bytes INTEGER NOT NULL, uploaders BLOB NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class PayerChannel:
    id: bytes
    chain: str
    payee: bytes
    deposit: int  # total ever deposited
    expires: int
    seq: int
    amount: int
    free_bytes: int
    paid_bytes: int
    uploaders: dict[bytes, int]

    @property
    def remaining(self) -> int:
        return self.deposit - self.amount


class PayerChannels:
    def __init__(self, path: Path, key: SigningKey) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def record(self, cid: bytes, chain: str, ch: Channel) -> None:
        """Learn a channel (after opening it) or refresh its deposit and expiry (after a top-up)."""
        with self._lock:
            row = self._db.execute("SELECT seq FROM channels WHERE id = ?", (cid,)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (cid, chain, ch.payee, ch.total_deposit, ch.expires, ch.seq, ch.paid, ch.free_bytes,
                     ch.paid_bytes, cbor.encode([[a, v] for a, v in ch.uploaders])),
                )  # fmt: skip
            else:
                self._db.execute(
                    "UPDATE channels SET deposit = ?, expires = ? WHERE id = ?", (ch.total_deposit, ch.expires, cid)
                )

    def forget(self, cid: bytes) -> None:
        with self._lock:
            self._db.execute("DELETE FROM channels WHERE id = ?", (cid,))

    def get(self, cid: bytes) -> PayerChannel | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM channels WHERE id = ?", (cid,)).fetchone()
        return None if row is None else _row(row)

    def all(self) -> list[PayerChannel]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM channels").fetchall()
        return [_row(r) for r in rows]

    def pay(
        self,
        cid: bytes,
        amount: int = 0,
        free_bytes: int = 0,
        paid_bytes: int = 0,
        uploader: bytes | None = None,
    ) -> Cheque:
        """Add to the channel's totals, persist, then sign the cumulative cheque.

        ``amount`` (money from the deposit) is attributed to ``uploader``'s files when given.
        PaymentRequiredError if the deposit does not cover it.
        """
        if min(amount, free_bytes, paid_bytes) < 0:
            raise LedgerError("cheque increments cannot be negative", "bad_amount")
        with self._lock:
            row = self._db.execute("SELECT * FROM channels WHERE id = ?", (cid,)).fetchone()
            if row is None:
                raise LedgerError("this wallet has no such channel", "unknown_channel")
            pc = _row(row)
            new_amount = pc.amount + amount
            if new_amount > pc.deposit:
                raise PaymentRequiredError(
                    f"channel deposit exhausted: {pc.remaining} left, {amount} needed; top it up or open another"
                )
            ups = dict(pc.uploaders)
            if uploader is not None and amount:
                ups[uploader] = ups.get(uploader, 0) + amount
            seq = pc.seq + 1
            # Persist first: if we crash after this, the same cheque is re-signed, never a different one.
            self._db.execute(
                "UPDATE channels SET seq = ?, amount = ?, free_bytes = ?, paid_bytes = ?, uploaders = ? WHERE id = ?",
                (seq, new_amount, pc.free_bytes + free_bytes, pc.paid_bytes + paid_bytes,
                 cbor.encode([[a, v] for a, v in sorted(ups.items())]), cid),
            )  # fmt: skip
            return make_cheque(
                self.key, pc.chain, cid, seq, new_amount, pc.free_bytes + free_bytes, pc.paid_bytes + paid_bytes, ups
            )

    def latest(self, cid: bytes) -> Cheque | None:
        """Re-sign the current totals (identical to the last cheque signed); None before the first."""
        pc = self.get(cid)
        if pc is None or pc.seq == 0:
            return None
        return make_cheque(self.key, pc.chain, cid, pc.seq, pc.amount, pc.free_bytes, pc.paid_bytes, pc.uploaders)


def _row(r: Any) -> PayerChannel:
    ups_raw = cbor.decode(bytes(r[9]), 1 << 20)
    return PayerChannel(
        id=bytes(r[0]),
        chain=str(r[1]),
        payee=bytes(r[2]),
        deposit=int(r[3]),
        expires=int(r[4]),
        seq=int(r[5]),
        amount=int(r[6]),
        free_bytes=int(r[7]),
        paid_bytes=int(r[8]),
        uploaders={bytes(a): int(v) for a, v in ups_raw},
    )
