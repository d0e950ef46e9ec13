"""Group commit: a batch is made durable with syncfs (data before names) where Linux has it,
else with per-file and per-directory fsyncs; a failing flush fails every write of its batch."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from veil import durable
from veil.storage import committer as committer_mod
from veil.storage.committer import GroupCommitter
from veil.storage.store import ShareStore
from veil.testing.shares import fake_file

SI = bytes(range(16))


def test_syncfs_is_used_on_linux(tmp_path: Path) -> None:
    if not durable.syncfs_available():
        pytest.skip("no syncfs here")
    durable.syncfs(tmp_path)  # callable, no error
    c = GroupCommitter(tmp_path)
    try:
        assert c.data_synced_by_batch
    finally:
        c.close()


def test_without_syncfs_writers_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_NO_SYNCFS", "1")
    store = ShareStore(tmp_path)
    try:
        assert not store.committer.data_synced_by_batch
        sh = fake_file(SI)[0]
        assert store.put_oneshot(SI, sh.shnum, sh.oneshot()) == sh.root
    finally:
        store.close()


def test_concurrent_oneshots_share_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = durable.syncfs

    def counting(path: Path) -> None:
        calls.append(path)
        real(path)

    if not durable.syncfs_available():
        pytest.skip("no syncfs here")
    monkeypatch.setattr(committer_mod, "syncfs", counting)
    store = ShareStore(tmp_path)
    shares = fake_file(SI)
    try:
        threads = [threading.Thread(target=store.put_oneshot, args=(SI, sh.shnum, sh.oneshot())) for sh in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        mhash = shares[0].mhash
        shnums, manifest = store.list_shares(SI, mhash)
        assert shnums == sorted(sh.shnum for sh in shares) and manifest is not None
        # two flushes per batch (data, then names), never more batches than writes
        assert len(calls) == 2 * store.committer.batches <= 2 * len(shares)
    finally:
        store.close()


def test_a_failed_flush_fails_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not durable.syncfs_available():
        pytest.skip("no syncfs here")

    def broken(path: Path) -> None:
        raise OSError(5, os.strerror(5), str(path))

    monkeypatch.setattr(committer_mod, "syncfs", broken)
    store = ShareStore(tmp_path)
    sh = fake_file(SI)[0]
    try:
        with pytest.raises(OSError):
            store.put_oneshot(SI, sh.shnum, sh.oneshot())
        assert store.list_shares(SI, sh.mhash) == ([], None)  # nothing was installed
    finally:
        store.close()
