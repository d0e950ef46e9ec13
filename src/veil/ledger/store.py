"""The validator's SQLite store: committed state, blocks, their signatures, transaction indexes.

WAL journal with ``synchronous=FULL``: a commit is on disk when ``commit_block`` returns, so
kill -9 at any moment loses no committed block. Each block is one SQLite transaction (state
rows, block, indexes, and the index of the replicated-log entry it came from, ``applied``),
so a crash leaves either all of it or none, and after a restart the validator re-applies the
log entries after ``applied`` (validator_apply.py).

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
from veil.ledger.names import Auction, Commit, NameRec
from veil.ledger.state import Account, Channel, NodeReg, Overlay, Supply, ValidatorSet
from veil.ledger.tx import Tx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    addr BLOB PRIMARY KEY, balance INTEGER NOT NULL, nonce INTEGER NOT NULL,
    epoch INTEGER NOT NULL, used INTEGER NOT NULL, stake INTEGER NOT NULL, unbonding INTEGER NOT NULL,
    unbond_at INTEGER NOT NULL, free_opens INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (addr BLOB PRIMARY KEY, operator BLOB NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nodes_operator ON nodes (operator);
CREATE TABLE IF NOT EXISTS block_sigs (
    height INTEGER NOT NULL, pub BLOB NOT NULL, sig BLOB NOT NULL, PRIMARY KEY (height, pub)) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, owner BLOB NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS names_owner ON names (owner);
CREATE TABLE IF NOT EXISTS name_commits (hash BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS name_auctions (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lease_auditors (auditor BLOB NOT NULL, id BLOB NOT NULL, PRIMARY KEY (auditor, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lease_auditors_id ON lease_auditors (id);
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
        self._vset: ValidatorSet | None = None

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
            self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", ("vset:" + g.validators.hash.hex(),
                                                                       cbor.encode(g.validators.to_wire())))
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
        self._vset = None

    def head(self) -> tuple[int, bytes, int, bytes]:
        """(height, hash, time, state hash) of the last committed block (genesis = height 0)."""
        rows = dict(self.db.execute("SELECT k, v FROM kv WHERE k IN ('height','head_hash','head_time','state_hash')"))
        return int(rows["height"]), bytes(rows["head_hash"]), int(rows["head_time"]), bytes(rows["state_hash"])

    # -- StateReader -----------------------------------------------------------------------

    def get_account(self, addr: bytes) -> Account | None:
        row = self.db.execute("SELECT balance, nonce, epoch, used, stake, unbonding, unbond_at, free_opens "
                              "FROM accounts WHERE addr = ?", (addr,)).fetchone()  # fmt: skip
        return None if row is None else Account(*row)

    def get_channel(self, cid: bytes) -> Channel | None:
        row = self.db.execute("SELECT data FROM channels WHERE id = ?", (cid,)).fetchone()
        return None if row is None else Channel.from_wire(cbor.decode(row[0], 1 << 16))

    def get_supply(self) -> Supply:
        if self._supply is None:
            raw = self._kv("supply")
            self._supply = Supply() if raw is None else Supply(*cbor.decode(bytes(raw), 64))
        return self._supply

    def get_node(self, addr: bytes) -> NodeReg | None:
        row = self.db.execute("SELECT data FROM nodes WHERE addr = ?", (addr,)).fetchone()
        return None if row is None else NodeReg.from_wire(cbor.decode(row[0], 1 << 12))

    def nodes_of(self, operator: bytes) -> list[tuple[bytes, NodeReg]]:
        rows = self.db.execute("SELECT addr, data FROM nodes WHERE operator = ?", (operator,)).fetchall()
        return [(bytes(a), NodeReg.from_wire(cbor.decode(d, 1 << 12))) for a, d in rows]

    def get_validators(self) -> ValidatorSet:
        if self._vset is None:
            raw = self._kv("vset")
            self._vset = ValidatorSet(0, ()) if raw is None else ValidatorSet.from_wire(cbor.decode(bytes(raw), 1 << 16))
        return self._vset

    def vset_by_hash(self, h: bytes) -> ValidatorSet | None:
        """A validator set that was in force at some height, by its hash."""
        raw = self._kv("vset:" + h.hex())
        return None if raw is None else ValidatorSet.from_wire(cbor.decode(bytes(raw), 1 << 16))

    def get_lease(self, lid: bytes) -> Lease | None:
        row = self.db.execute("SELECT data FROM leases WHERE id = ?", (lid,)).fetchone()
        return None if row is None else Lease.from_wire(cbor.decode(row[0], 1 << 16))

    def leases_of(self, addr: bytes) -> list[bytes]:
        rows = self.db.execute("SELECT id FROM leases WHERE payer = ? UNION SELECT id FROM leases WHERE payee = ? "
                               "UNION SELECT id FROM lease_auditors WHERE auditor = ?", (addr, addr, addr))  # fmt: skip
        return [bytes(r[0]) for r in rows]

    def channels_of(self, addr: bytes) -> list[tuple[bytes, Channel]]:
        rows = self.db.execute(
            "SELECT id, data FROM channels WHERE payer = ? UNION SELECT id, data FROM channels WHERE payee = ?",
            (addr, addr),
        ).fetchall()
        return [(bytes(r[0]), Channel.from_wire(cbor.decode(r[1], 1 << 16))) for r in rows]

    def get_name(self, name: str) -> NameRec | None:
        row = self.db.execute("SELECT data FROM names WHERE name = ?", (name,)).fetchone()
        return None if row is None else NameRec.decode(bytes(row[0]))

    def get_commit(self, h: bytes) -> Commit | None:
        row = self.db.execute("SELECT data FROM name_commits WHERE hash = ?", (h,)).fetchone()
        return None if row is None else Commit.from_wire(cbor.decode(row[0], 1 << 10))

    def get_auction(self, name: str) -> Auction | None:
        row = self.db.execute("SELECT data FROM name_auctions WHERE name = ?", (name,)).fetchone()
        return None if row is None else Auction.from_wire(cbor.decode(row[0], 1 << 10))

    def names_of(self, owner: bytes) -> list[tuple[str, NameRec]]:
        rows = self.db.execute("SELECT name, data FROM names WHERE owner = ? ORDER BY name", (owner,)).fetchall()
        return [(str(n), NameRec.decode(bytes(d))) for n, d in rows]

    def all_names(self) -> list[tuple[str, bytes]]:
        """Every name record (name, encoded record): what the names tree is built from at start."""
        return [(str(n), bytes(d)) for n, d in self.db.execute("SELECT name, data FROM names")]

    def auctions(self) -> list[tuple[str, Auction]]:
        rows = self.db.execute("SELECT name, data FROM name_auctions ORDER BY name").fetchall()
        return [(str(n), Auction.from_wire(cbor.decode(d, 1 << 10))) for n, d in rows]

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
                "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            self.db.execute("DELETE FROM lease_auditors WHERE id = ?", (lid,))
            if le is None:
                self.db.execute("DELETE FROM leases WHERE id = ?", (lid,))
            else:
                if le.auditor and le.auditor != le.payer:  # so an auditor finds the leases it audits
                    self.db.execute("INSERT OR IGNORE INTO lease_auditors VALUES (?, ?)", (le.auditor, lid))
                self.db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (lid, le.payer, le.payee, cbor.encode(le.to_wire()))
                )
        for addr, reg in ov.nodes.items():
            if reg is None:
                self.db.execute("DELETE FROM nodes WHERE addr = ?", (addr,))
            else:
                self.db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?)", (addr, reg.operator, cbor.encode(reg.to_wire())))
        for name, rec in ov.names.items():
            if rec is None:
                self.db.execute("DELETE FROM names WHERE name = ?", (name,))
            else:
                self.db.execute("INSERT OR REPLACE INTO names VALUES (?, ?, ?)", (name, rec.owner, rec.encode()))
        for h, c in ov.commits.items():
            if c is None:
                self.db.execute("DELETE FROM name_commits WHERE hash = ?", (h,))
            else:
                self.db.execute("INSERT OR REPLACE INTO name_commits VALUES (?, ?)", (h, cbor.encode(c.to_wire())))
        for name, a in ov.auctions.items():
            if a is None:
                self.db.execute("DELETE FROM name_auctions WHERE name = ?", (name,))
            else:
                self.db.execute("INSERT OR REPLACE INTO name_auctions VALUES (?, ?)", (name, cbor.encode(a.to_wire())))
        if ov.supply is not None:
            self.db.execute("INSERT OR REPLACE INTO kv VALUES ('supply', ?)", (cbor.encode(list(ov.supply)),))
        if ov.vset is not None:
            raw = cbor.encode(ov.vset.to_wire())
            self.db.execute("INSERT OR REPLACE INTO kv VALUES ('vset', ?)", (raw,))
            self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", ("vset:" + ov.vset.hash.hex(), raw))

    def load_accounts(self, rows: Iterable[tuple[int | bytes, ...]]) -> None:
        """Bulk-insert accounts (address + the 8 Account fields; benchmarks and simulations only)."""
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def applied(self) -> int:
        """The last replicated-log index applied to this store (0: none)."""
        return int(self._kv("applied") or 0)

    def set_applied(self, index: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES ('applied', ?)", (index,))

    def commit_block(self, header: BlockHeader, body: bytes, txs: Sequence[Tx], changes: Overlay, applied: int) -> None:
        """Persist one block atomically and durably, with the log index it came from."""
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
            self.db.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                [("height", h), ("head_hash", header.hash), ("head_time", header.time), ("state_hash", header.state),
                 ("applied", applied)],
            )  # fmt: skip
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self._supply = None
            self._vset = None
            raise
        if changes.supply is not None:
            self._supply = changes.supply
        if changes.vset is not None:
            self._vset = changes.vset

    def add_sigs(self, items: Sequence[tuple[int, bytes, bytes]], applied: int) -> None:
        """Record validator signatures (height, key, signature) of committed blocks."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR IGNORE INTO block_sigs VALUES (?, ?, ?)", items)
            self.set_applied(applied)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def sigs(self, height: int) -> dict[bytes, bytes]:
        return {bytes(p): bytes(s) for p, s in self.db.execute("SELECT pub, sig FROM block_sigs WHERE height = ?", (height,))}

    def header(self, height: int) -> bytes | None:
        row = self.db.execute("SELECT header FROM blocks WHERE height = ?", (height,)).fetchone()
        return None if row is None else bytes(row[0])

    def sig_counts(self, start: int) -> dict[int, int]:
        """Signature counts per height from ``start`` on."""
        rows = self.db.execute("SELECT height, count(*) FROM block_sigs WHERE height >= ? GROUP BY height", (start,))
        return {int(h): int(n) for h, n in rows}

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

    def history(self, addr: bytes, limit: int) -> list[tuple[int, int]]:
        rows = self.db.execute(
            "SELECT height, idx FROM addr_txs WHERE addr = ? ORDER BY height DESC, idx DESC LIMIT ?", (addr, limit)
        )
        return [(int(h), int(i)) for h, i in rows]
