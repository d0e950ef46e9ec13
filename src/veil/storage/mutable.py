"""A node's mutable slots in SQLite: the highest valid version of each slot, and a few before it.

docs/specs/folders.md, "Node rules". ``put`` verifies the record itself (key hashes to the slot
id, signature, bounds: format/mutable.py) before it looks at the database, so no forged version is
ever stored; then, in one transaction, it refuses (SlotConflict, carrying the current record) a
sequence number that is not higher than the current one, a record that does not name the current
one among its parents (so a node only ever moves to versions that contain what it held), and a
compare-and-swap whose expected checkstring is not the current one; stores the record, and forgets versions beyond the
newest ``keep``. WAL with synchronous=FULL: a stored version survives kill -9 and power loss.

    DATA/mutable/slots.sqlite   versions(slot, seq, hash, record)

Imports from: veil.errors, veil.format, veil.protocol.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

from veil.errors import StorageFullError, VeilError
from veil.format.mutable import Checkstring, SlotRecord, parse_record
from veil.protocol.mutable import VersionInfo

DEFAULT_KEEP = 10
DEFAULT_MAX_BYTES = 1 << 30
SCHEMA = 1


class _AnyVersion:
    pass


ANY: Final = _AnyVersion()  # ``expect`` for a write without compare-and-swap (only "higher")


class SlotConflict(VeilError):
    """The slot holds a different current version than the write expected; nothing was changed."""

    exit_code = 6

    def __init__(self, message: str, current: bytes | None) -> None:
        super().__init__(message)
        self.current = current


class MutableStore:
    def __init__(self, path: Path, keep: int = DEFAULT_KEEP, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if keep < 1:
            raise ValueError("keep at least the current version")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS versions (slot BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,"
            " record BLOB NOT NULL, PRIMARY KEY (slot, seq)) WITHOUT ROWID")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
        elif row[0] != SCHEMA:
            raise VeilError(f"{path}: slot store schema {row[0]} is not supported (this node knows {SCHEMA})")
        self._used = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(record)), 0) FROM versions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _current(self, slot: bytes) -> tuple[int, bytes, bytes] | None:
        row = self._db.execute(
            "SELECT seq, hash, record FROM versions WHERE slot = ? ORDER BY seq DESC LIMIT 1", (slot,)).fetchone()
        return (int(row[0]), bytes(row[1]), bytes(row[2])) if row else None

    def put(self, slot: bytes, raw: bytes, expect: Checkstring | _AnyVersion | None = ANY) -> SlotRecord:
        """Store ``raw`` as the slot's new current version; IntegrityError if it is not a valid
        record of ``slot``, SlotConflict if it is not newer or ``expect`` is not current,
        StorageFullError if the store is full. Putting the current record again is a no-op."""
        rec = parse_record(raw, slot)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._put_locked(slot, rec, expect)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return rec

    def _put_locked(self, slot: bytes, rec: SlotRecord, expect: Checkstring | _AnyVersion | None) -> None:
        cur = self._current(slot)
        if cur is not None and cur[0] == rec.seq and cur[1] == rec.hash:
            return
        if cur is not None and rec.seq <= cur[0]:
            raise SlotConflict(f"version {rec.seq} is not newer than the current version {cur[0]}", cur[2])
        have = Checkstring(cur[0], cur[1]) if cur is not None else None
        if have is not None and have not in rec.parents:
            raise SlotConflict(f"version {rec.seq} is not built on the current version {have.seq}", cur[2] if cur else None)
        if not isinstance(expect, _AnyVersion):
            if expect != have:
                what = f"version {cur[0]}" if cur is not None else "nothing"
                raise SlotConflict(f"the slot holds {what}, not the version this write is based on",
                                   cur[2] if cur is not None else None)
        if self._used + len(rec.raw) > self.max_bytes:
            raise StorageFullError(f"no space: this node keeps at most {self.max_bytes} bytes of folder versions")
        self._db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)", (slot, rec.seq, rec.hash, rec.raw))
        self._used += len(rec.raw)
        old = self._db.execute(
            "SELECT seq, LENGTH(record) FROM versions WHERE slot = ? ORDER BY seq DESC LIMIT -1 OFFSET ?",
            (slot, self.keep)).fetchall()
        for seq, size in old:
            self._db.execute("DELETE FROM versions WHERE slot = ? AND seq = ?", (slot, seq))
            self._used -= int(size)

    def get(self, slot: bytes, seq: int | None = None) -> bytes | None:
        """The current record (or version ``seq`` if still kept), or None."""
        with self._lock:
            if seq is None:
                cur = self._current(slot)
                return cur[2] if cur is not None else None
            row = self._db.execute("SELECT record FROM versions WHERE slot = ? AND seq = ?", (slot, seq)).fetchone()
        return bytes(row[0]) if row else None

    def versions(self, slot: bytes) -> list[VersionInfo]:
        """The versions kept, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, hash, LENGTH(record) FROM versions WHERE slot = ? ORDER BY seq DESC", (slot,)).fetchall()
        return [VersionInfo(int(s), bytes(h), int(n)) for s, h, n in rows]

    def usage(self) -> dict[str, int]:
        with self._lock:
            slots = int(self._db.execute("SELECT COUNT(DISTINCT slot) FROM versions").fetchone()[0])
        return {"slots": slots, "bytes": self._used, "max_bytes": self.max_bytes, "keep": self.keep}
