"""Storage admission by ticket: what an account stores on this node stays within its quota.

With the ``ticket`` policy (docs/specs/payments.md, "Storage admission"), an upload is taken
only with a storage ticket (protocol/tickets.py) signed by an account, for this node and this
storage index, and only if the bytes the account already keeps here, plus those of its uploads
in progress, plus the new share, fit the account's free storage quota on the ledger
(``quota_of``: ``Params.storage_quota_for(stake)``, so quota is bought with locked stake).

A ticket admits once: its ``(account, nonce)`` is kept (``tickets`` table) until it expires, and a
second request with the same ticket is refused as a replay, whether or not the first one stored
anything.

Each stored share is charged to the account whose ticket brought it, once (a second commit of
the same share is not charged again), in ``charges.sqlite``; a share deleted here (drain) is
refunded. Uploads in progress hold their share's size until they are committed, aborted or
reaped.

Imports from: veil.errors, veil.ledger, veil.protocol.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from veil.errors import IntegrityError, PaymentRequiredError
from veil.ledger.address import address_of
from veil.protocol.tickets import check_ticket, parse_ticket


@dataclass
class Hold:
    key: str
    account: bytes
    nbytes: int
    uid: str | None = None  # the upload session it belongs to, once there is one


class Admission:
    def __init__(self, path: Path, node_id: bytes, quota_of: Callable[[bytes], int],
                 alive: Callable[[str], bool], clock: Callable[[], float] = time.time) -> None:
        self.node_id, self.quota_of, self.alive, self.clock = node_id, quota_of, alive, clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS charges (si BLOB, mhash BLOB, shnum INTEGER, account BLOB, "
                         "nbytes INTEGER, PRIMARY KEY (si, mhash, shnum))")
        self._db.execute("CREATE TABLE IF NOT EXISTS tickets (account BLOB, nonce BLOB, expires INTEGER, "
                         "PRIMARY KEY (account, nonce))")
        self._admits = 0
        self._holds: dict[str, Hold] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def used(self, account: bytes) -> int:
        """Bytes charged to ``account`` on this node (committed shares only)."""
        with self._lock:
            return self._used_locked(account)

    def _used_locked(self, account: bytes) -> int:
        row = self._db.execute("SELECT COALESCE(SUM(nbytes), 0) FROM charges WHERE account = ?", (account,)).fetchone()
        return int(row[0])

    def admit(self, header: str | None, si: bytes, nbytes: int) -> Hold:
        """Check the ticket and the quota and hold ``nbytes`` for the account; PaymentRequiredError
        (402) without a ticket or past the quota, IntegrityError (400) for a bad ticket."""
        if not header:
            raise PaymentRequiredError("this node stores shares only with a storage ticket (X-Veil-Storage-Ticket)")
        t = parse_ticket(header)
        check_ticket(t, self.node_id, si, self.clock())
        account = address_of(t.account)
        with self._lock:
            self._spend_ticket(t.account, t.nonce, t.expires)
        quota = self.quota_of(account)  # outside the lock: it may ask the ledger
        with self._lock:
            for k in [k for k, h in self._holds.items() if h.uid is not None and not self.alive(h.uid)]:
                del self._holds[k]  # sessions reaped or gone
            held = sum(h.nbytes for h in self._holds.values() if h.account == account)
            used = self._used_locked(account)
            if used + held + nbytes > quota:
                raise PaymentRequiredError(
                    f"storage quota exceeded: the account keeps {used} bytes here (+{held} in progress) of "
                    f"{quota}; this share needs {nbytes} (lock more stake, or pay with a lease)"
                )
            h = Hold(secrets.token_hex(8), account, nbytes)
            self._holds[h.key] = h
            return h

    def _spend_ticket(self, account: bytes, nonce: bytes, expires: int) -> None:
        """Record a ticket as used (IntegrityError if it was already): tickets are single-use."""
        self._admits += 1
        if self._admits % 256 == 0:
            self._db.execute("DELETE FROM tickets WHERE expires < ?", (int(self.clock()),))
        cur = self._db.execute("INSERT OR IGNORE INTO tickets VALUES (?, ?, ?)", (account, nonce, expires))
        if cur.rowcount == 0:
            raise IntegrityError("storage ticket was used already (a ticket admits one request)")

    def bind(self, hold: Hold, uid: str) -> None:
        with self._lock:
            hold.uid = uid

    def release(self, hold: Hold | None) -> None:
        if hold is not None:
            with self._lock:
                self._holds.pop(hold.key, None)

    def hold_of(self, uid: str) -> Hold | None:
        with self._lock:
            return next((h for h in self._holds.values() if h.uid == uid), None)

    def charge(self, hold: Hold, si: bytes, mhash: bytes, shnum: int) -> None:
        """The share is stored: charge it to the hold's account (once) and drop the hold."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO charges VALUES (?, ?, ?, ?, ?)",
                             (si, mhash, shnum, hold.account, hold.nbytes))
            self._holds.pop(hold.key, None)

    def refund(self, si: bytes, mhash: bytes, shnum: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM charges WHERE si = ? AND mhash = ? AND shnum = ?", (si, mhash, shnum))
