"""What S3 keeps about an object that a folder entry has no field for: its ETag (the MD5 of the
plaintext, or the multipart form), its headers (Content-Disposition, Content-Encoding,
Cache-Control, user metadata ``x-amz-meta-*``) and its part sizes.

A local SQLite table beside the endpoint's keys (``$VEIL_HOME/s3/meta.sqlite``), keyed by a
tagged hash of the file's read cap, so the table holds no cap and no name: without it the
objects are all still there and readable, only their ETag falls back to a value derived from
the cap and the extra headers are gone (docs/specs/s3.md, "Mapping").
Imports from: veil.crypto (and the standard library).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from veil.crypto.hashes import tagged_hash
from veil.crypto.labels import S3_META_ID


def cap_id(cap: str) -> str:
    return tagged_hash(S3_META_ID, cap.encode()).hex()


@dataclass(frozen=True)
class ObjectMeta:
    etag: str  # quoted
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names, as they are sent back
    parts: tuple[int, ...] = ()  # part sizes of a multipart object (partNumber on GET/HEAD)


def fallback(cap: str) -> ObjectMeta:
    return ObjectMeta(f'"{cap_id(cap)[:32]}"')


class MetaStore:
    """Thread-safe; every write is one committed transaction (WAL)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, etag TEXT NOT NULL, "
                             "headers TEXT NOT NULL, parts TEXT NOT NULL)")  # fmt: skip

    def put(self, cap: str, meta: ObjectMeta) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                             (cap_id(cap), meta.etag, json.dumps(meta.headers), json.dumps(list(meta.parts))))

    def get(self, cap: str) -> ObjectMeta:
        with self._lock:
            row = self._db.execute("SELECT etag, headers, parts FROM objects WHERE id = ?", (cap_id(cap),)).fetchone()
        if row is None:
            return fallback(cap)
        return ObjectMeta(row[0], dict(json.loads(row[1])), tuple(json.loads(row[2])))

    def close(self) -> None:
        with self._lock:
            self._db.close()
