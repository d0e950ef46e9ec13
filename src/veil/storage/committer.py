"""Group commit: one thread makes the renames of concurrent writes durable together.

Each writer writes its own file, then hands an *install* (a function that renames the file
into place under the store's lock and returns the directories it changed) to the committer and
waits. The committer takes every install queued so far and makes the batch durable:

- with ``syncfs`` (Linux, ``durable.syncfs``): one ``syncfs`` before the renames (every file's
  data is on disk before any name points at it), the renames, one ``syncfs`` after (the names
  are on disk). Writers do not fsync their files (``data_synced_by_batch``), so a batch of N
  small writes costs two flushes instead of ≈ 6 N fsyncs (file, manifest, new directories);
- without it: writers fsync their files, and the committer fsyncs the union of the changed
  directories once per batch.

Only then are the writers woken: a write is acknowledged only after its data and the directory
entries naming it are on disk.

Imports from: veil.durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.durable import fsync_dir, syncfs, syncfs_available

Install = Callable[[], tuple[Any, set[Path]]]
MAX_BATCH = 256


class _Item:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Install) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, root: Path | None = None) -> None:
        # With a root on a file system that has syncfs, the batch flushes file data too.
        self.root = root
        self.data_synced_by_batch = root is not None and syncfs_available()
        self._queue: list[_Item] = []
        self._cv = threading.Condition()
        self._stopped = False
        self.batches = 0  # for tests and status: how many batches were made durable
        self.installs = 0
        self._thread = threading.Thread(target=self._run, name="share-committer", daemon=True)
        self._thread.start()

    def run(self, fn: Install) -> Any:
        """Run ``fn`` in the next batch; return its result once its directories are durable."""
        item = _Item(fn)
        with self._cv:
            if self._stopped:
                raise RuntimeError("the share store is closed")
            self._queue.append(item)
            self._cv.notify()
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def close(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopped:
                    self._cv.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            dirs: set[Path] = set()
            failure: OSError | None = None
            if self.data_synced_by_batch:
                assert self.root is not None
                try:
                    syncfs(self.root)  # every file's data before any name points at it
                except OSError as e:
                    failure = e
            for item in batch:
                if failure is not None:
                    item.error = failure
                    continue
                try:
                    item.result, changed = item.fn()
                    dirs |= changed
                except BaseException as e:  # handed to the writer that asked
                    item.error = e
            if self.data_synced_by_batch and failure is None:
                assert self.root is not None
                try:
                    syncfs(self.root)  # the renames and new directories
                except OSError as e:
                    failure = e
            elif failure is None:
                for d in sorted(dirs, key=lambda p: -len(p.parts)):  # deepest first, then their parents
                    try:
                        fsync_dir(d)
                    except OSError as e:
                        failure = e
            self.batches += 1
            self.installs += len(batch)
            for item in batch:
                if failure is not None and item.error is None:
                    item.error = failure
                item.done.set()
