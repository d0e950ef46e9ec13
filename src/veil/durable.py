"""Atomic, durable file writes: the one way Veil replaces a small file on disk.

A write goes to a temporary file beside the target, is fsynced, renamed over the target, and
the directory is fsynced, so after a crash (kill -9, power loss) the target holds either the
old bytes or the new ones, never a mix and never nothing. ``exclusive`` refuses to replace an
existing file (a wallet, an identity key): the rename becomes a hard link, which fails if the
target appeared meanwhile.

Imports from: the standard library only (layer 0, beside veil.errors).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import secrets
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


def syncfs_available() -> bool:
    """Whether ``syncfs`` (Linux) can flush a whole file system in one call."""
    return _syncfs is not None and os.environ.get("VEIL_NO_SYNCFS") != "1"


def syncfs(path: Path) -> None:
    """Make every write on the file system holding ``path`` durable: file data, new names and
    renames alike, in one call (syncfs(2); since Linux 5.8 it reports write-back errors).
    Group commit uses it so a batch of N small writes costs one flush, not N fsyncs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, exclusive: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file gets ``mode``.

    With ``exclusive``, FileExistsError if ``path`` already exists (nothing is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, value: Any, mode: int = 0o644) -> None:
    """``write_atomic`` of ``value`` as indented, key-sorted JSON."""
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode(), mode)
