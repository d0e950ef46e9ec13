"""A node's durable cheque store (SQLite, WAL, synchronous=FULL): one row per channel holding
its latest cheque, written and fsynced before the cheque is acknowledged."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path


class SqliteChequeStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS cheques (channel BLOB PRIMARY KEY, raw BLOB NOT NULL) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS closing (channel BLOB PRIMARY KEY) WITHOUT ROWID")
        self._lock = threading.Lock()

    def save(self, channel: bytes, cheque: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO cheques VALUES (?, ?)", (channel, cheque))

    def load(self) -> Iterable[tuple[bytes, bytes]]:
        with self._lock:
            return [(bytes(c), bytes(r)) for c, r in self._db.execute("SELECT channel, raw FROM cheques")]

    def forget(self, channel: bytes) -> None:
        with self._lock:
            self._db.execute("DELETE FROM cheques WHERE channel = ?", (channel,))
            self._db.execute("DELETE FROM closing WHERE channel = ?", (channel,))

    def mark_closing(self, channel: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO closing VALUES (?)", (channel,))

    def closing(self) -> set[bytes]:
        with self._lock:
            return {bytes(r[0]) for r in self._db.execute("SELECT channel FROM closing")}

    def close(self) -> None:
        with self._lock:
            self._db.close()
