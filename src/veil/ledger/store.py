"""The validator's SQLite store: committed state, blocks, transaction indexes and mempool.

WAL journal with ``synchronous=FULL``: a commit is on disk when ``commit_block`` returns, so
kill -9 at any moment loses no committed block. Each block is one SQLite transaction
(state rows, block, indexes, and removal of its transactions from the mempool), so a crash
leaves either all of it or none. Accepted transactions are written to the mempool table
before they are acknowledged; after a restart the validator re-applies them.

Not thread-safe on its own: the validator serialises access with its lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger.block import BlockHeader
from veil.ledger.genesis import Genesis, decode_genesis
from veil.ledger.lease import Lease
from veil.ledger.state import Account, Channel, Overlay, Supply
from veil.ledger.tx import Tx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    addr BLOB PRIMARY KEY, balance INTEGER NOT NULL, nonce INTEGER NOT NULL,
    epoch INTEGER NOT NULL, used INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
    id BLOB PRIMARY KEY, payer BLOB NOT NULL, payee BLOB NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS channels_payer ON channels (payer);
CREATE INDEX IF NOT EXISTS channels_payee ON channels (payee);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash BLOB NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (id BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS addr_txs (
    addr BLOB NOT NULL, height INTEGER NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (addr, height, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    id BLOB PRIMARY KEY, payer BLOB NOT NULL, payee BLOB NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_payee ON leases (payee);
CREATE TABLE IF NOT EXISTS mempool (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, raw BLOB NOT NULL);
"""


class LedgerStore:
    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(_SCHEMA)
        self._supply: Supply | None = None

    def close(self) -> None:
        self.db.close()

    # -- key/value -------------------------------------------------------------------------

    def _kv(self, k: str) -> Any:
        row = self.db.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()
        return None if row is None else row[0]

    def genesis(self) -> Genesis | None:
        raw = self._kv("genesis")
        return None if raw is None else decode_genesis(bytes(raw))

    def init_genesis(self, g: Genesis) -> None:
        """Write genesis and its state, once; a different genesis later is refused."""
        have = self._kv("genesis")
        if have is not None:
            if bytes(have) != g.raw:
                raise LedgerError("this validator's store holds a different genesis", "wrong_chain")
            return
        ov = g.changes()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._write_state(ov)
            self.db.executemany(
                "INSERT INTO kv VALUES (?, ?)",
                [
                    ("genesis", g.raw),
                    ("height", 0),
                    ("head_hash", g.hash),
                    ("head_time", g.time),
                    ("state_hash", g.state_hash),
                ],
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._supply = None

    def head(self) -> tuple[int, bytes, int, bytes]:
        """(height, hash, time, state hash) of the last committed block (genesis = height 0)."""
        rows = dict(self.db.execute("SELECT k, v FROM kv WHERE k IN ('height','head_hash','head_time','state_hash')"))
        return int(rows["height"]), bytes(rows["head_hash"]), int(rows["head_time"]), bytes(rows["state_hash"])

    # -- StateReader -----------------------------------------------------------------------

    def get_account(self, addr: bytes) -> Account | None:
        row = self.db.execute("SELECT balance, nonce, epoch, used FROM accounts WHERE addr = ?", (addr,)).fetchone()
        return None if row is None else Account(*row)

    def get_channel(self, cid: bytes) -> Channel | None:
        row = self.db.execute("SELECT data FROM channels WHERE id = ?", (cid,)).fetchone()
        return None if row is None else Channel.from_wire(cbor.decode(row[0], 1 << 16))

    def get_supply(self) -> Supply:
        if self._supply is None:
            raw = self._kv("supply")
            self._supply = Supply() if raw is None else Supply(*cbor.decode(bytes(raw), 64))
        return self._supply

    def get_lease(self, lid: bytes) -> Lease | None:
        row = self.db.execute("SELECT data FROM leases WHERE id = ?", (lid,)).fetchone()
        return None if row is None else Lease.from_wire(cbor.decode(row[0], 1 << 16))

    def leases_of(self, addr: bytes) -> list[bytes]:
        rows = self.db.execute("SELECT id FROM leases WHERE payer = ? UNION SELECT id FROM leases WHERE payee = ?",
                               (addr, addr))  # fmt: skip
        return [bytes(r[0]) for r in rows]

    def channels_of(self, addr: bytes) -> list[tuple[bytes, Channel]]:
        rows = self.db.execute(
            "SELECT id, data FROM channels WHERE payer = ? UNION SELECT id, data FROM channels WHERE payee = ?",
            (addr, addr),
        ).fetchall()
        return [(bytes(r[0]), Channel.from_wire(cbor.decode(r[1], 1 << 16))) for r in rows]

    def count_accounts(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM accounts").fetchone()[0])

    def size_bytes(self) -> int:
        ps = self.db.execute("PRAGMA page_size").fetchone()[0]
        pc = self.db.execute("PRAGMA page_count").fetchone()[0]
        return int(ps) * int(pc)

    # -- writes ----------------------------------------------------------------------------

    def _write_state(self, ov: Overlay) -> None:
        if ov.accounts:
            self.db.executemany(
                "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)",
                [(k, *v) for k, v in ov.accounts.items()],
            )
        for cid, ch in ov.channels.items():
            if ch is None:
                self.db.execute("DELETE FROM channels WHERE id = ?", (cid,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?)",
                    (cid, ch.payer, ch.payee, cbor.encode(ch.to_wire())),
                )
        for lid, le in ov.leases.items():
            if le is None:
                self.db.execute("DELETE FROM leases WHERE id = ?", (lid,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (lid, le.payer, le.payee, cbor.encode(le.to_wire()))
                )
        if ov.supply is not None:
            self.db.execute("INSERT OR REPLACE INTO kv VALUES ('supply', ?)", (cbor.encode(list(ov.supply)),))

    def load_accounts(self, rows: Iterable[tuple[bytes, int, int, int, int]]) -> None:
        """Bulk-insert accounts (benchmarks and simulations only: bypasses the rules)."""
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def commit_block(
        self, header: BlockHeader, body: bytes, txs: Sequence[Tx], changes: Overlay, mempool_upto: int
    ) -> None:
        """Persist one block atomically and durably, dropping its transactions from the mempool."""
        h = header.height
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._write_state(changes)
            self.db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?)", (h, header.hash, header.raw, body))
            self.db.executemany("INSERT INTO txs VALUES (?, ?, ?)", [(t.txid, h, i) for i, t in enumerate(txs)])
            idx: set[tuple[bytes, int, int]] = set()
            for i, t in enumerate(txs):
                idx.add((t.sender, h, i))
                for r in t.recipients():
                    idx.add((r, h, i))
            self.db.executemany("INSERT INTO addr_txs VALUES (?, ?, ?)", idx)
            self.db.execute("DELETE FROM mempool WHERE seq <= ?", (mempool_upto,))
            self.db.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                [("height", h), ("head_hash", header.hash), ("head_time", header.time), ("state_hash", header.state)],
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self._supply = None
            raise
        if changes.supply is not None:
            self._supply = changes.supply

    def mempool_add(self, items: Sequence[tuple[bytes, bytes]]) -> int:
        """Durably append accepted (txid, raw) pairs; returns the sequence number of the last."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            base = int(self._kv("mempool_seq") or 0)
            self.db.executemany("INSERT INTO mempool VALUES (?, ?, ?)", [(base + 1 + i, t, r) for i, (t, r) in enumerate(items)])
            last = base + len(items)
            self.db.execute("INSERT OR REPLACE INTO kv VALUES ('mempool_seq', ?)", (last,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return last

    def mempool(self) -> list[tuple[int, bytes]]:
        return [(int(s), bytes(r)) for s, r in self.db.execute("SELECT seq, raw FROM mempool ORDER BY seq")]

    def mempool_drop(self, seqs: Iterable[int]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("DELETE FROM mempool WHERE seq = ?", [(s,) for s in seqs])
        self.db.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------

    def block(self, height: int) -> tuple[bytes, bytes] | None:
        row = self.db.execute("SELECT header, body FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def headers(self, start: int, limit: int) -> list[bytes]:
        rows = self.db.execute("SELECT header FROM blocks WHERE height >= ? ORDER BY height LIMIT ?", (start, limit))
        return [bytes(r[0]) for r in rows]

    def tx_location(self, txid: bytes) -> tuple[int, int] | None:
        row = self.db.execute("SELECT height, idx FROM txs WHERE id = ?", (txid,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def in_mempool(self, txid: bytes) -> bytes | None:
        row = self.db.execute("SELECT raw FROM mempool WHERE id = ?", (txid,)).fetchone()
        return None if row is None else bytes(row[0])

    def history(self, addr: bytes, limit: int) -> list[tuple[int, int]]:
        rows = self.db.execute(
            "SELECT height, idx FROM addr_txs WHERE addr = ? ORDER BY height DESC, idx DESC LIMIT ?", (addr, limit)
        )
        return [(int(h), int(i)) for h, i in rows]
