"""Group commit: one thread makes the renames of concurrent writes durable together.

Each writer fsyncs its own file, then hands an *install* (a function that renames the file
into place under the store's lock and returns the directories it changed) to the committer and
waits. The committer takes every install queued so far, runs them, fsyncs the union of their
directories once, and only then wakes the writers: a write is acknowledged only after the
directory entries naming it are on disk. On a journalling file system the first directory
fsync of a batch commits the journal for all of them, so N concurrent small uploads pay about
one journal commit instead of N.

Imports from: veil.durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.durable import fsync_dir

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
    def __init__(self) -> None:
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
            for item in batch:
                try:
                    item.result, changed = item.fn()
                    dirs |= changed
                except BaseException as e:  # handed to the writer that asked
                    item.error = e
            failure: OSError | None = None
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
