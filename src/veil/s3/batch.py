"""Group commit: PUTs into one folder that arrive together become one folder version.

A folder change is a compare-and-swap write to the folder's nodes (folders.md), the slow part
of a small PUT. Each folder has a lock; a writer queues its entry, and whoever holds the lock
reads the folder once and writes every queued entry in one edit (the last entry per name wins,
as S3's last writer does). A writer whose entry went in with another's batch just returns.
A folder that a delete detached from its parent (its last object gone) is marked, so a PUT
that resolved its path before that walks it again instead of writing into a detached folder.

Imports from: veil.errors, veil.format, veil.client, veil.s3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from veil.client.folders import Snapshot, edit_folder, read_folder
from veil.client.network import Network
from veil.errors import UsageError
from veil.format.folder import FOLDER, Entry
from veil.format.folder_caps import FolderWriteCap
from veil.format.folder_ops import Op, Put
from veil.s3.errors import S3Error


class Detached(Exception):
    """The folder was removed from its parent meanwhile: resolve the path again."""


@dataclass
class _Waiter:
    entry: Entry
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class FolderBatcher:
    def __init__(self, retry: Callable[[Callable[[], None]], None]) -> None:
        self._retry = retry
        self._lock = threading.Lock()
        self._pending: dict[bytes, list[_Waiter]] = {}
        self._folder_locks: dict[bytes, threading.Lock] = {}
        self._detached: set[bytes] = set()

    def folder_lock(self, slot_id: bytes) -> threading.Lock:
        with self._lock:
            return self._folder_locks.setdefault(slot_id, threading.Lock())

    def detach(self, slot_id: bytes) -> None:
        """Call holding ``folder_lock(slot_id)``, once the folder is no longer in its parent."""
        with self._lock:
            self._detached.add(slot_id)

    def put(self, net: Network, folder: FolderWriteCap, entry: Entry) -> None:
        sid = folder.slot_id
        w = _Waiter(entry)
        with self._lock:
            self._pending.setdefault(sid, []).append(w)
        with self.folder_lock(sid):
            if not w.done.is_set():
                with self._lock:
                    batch = self._pending.pop(sid, [])
                    detached = sid in self._detached
                self._run(net, folder, batch, detached)
        if w.error is not None:
            raise w.error

    def _run(self, net: Network, folder: FolderWriteCap, batch: list[_Waiter], detached: bool) -> None:
        try:
            if detached:
                raise Detached()
            try:
                self._retry(lambda: self._write(net, folder, batch))
            except UsageError:  # one name colliding once case-folded: the others still go in
                if len(batch) == 1:
                    raise
                for w in batch:
                    try:
                        self._retry(lambda w=w: self._write(net, folder, [w]))  # type: ignore[misc]
                    except BaseException as e:  # handed to that request
                        w.error = e
        except BaseException as e:  # handed to every request of the batch
            for w in batch:
                w.error = w.error or e
        finally:
            for w in batch:
                w.done.set()

    def _write(self, net: Network, folder: FolderWriteCap, batch: list[_Waiter]) -> None:
        snap: Snapshot = read_folder(net, folder)
        last = {w.entry.name: w for w in batch}
        ops: list[Op] = []
        for name, w in last.items():
            old = snap.get(name)
            if old is not None and old.kind == FOLDER:
                w.error = S3Error("InvalidArgument", "this endpoint cannot store the key: it names a prefix of "
                                  "other keys (keys are folder paths)")  # fmt: skip
                continue
            ops.append(Put(w.entry, old))
        if ops:
            edit_folder(net, snap, ops)
