"""Buckets and objects on Veil folders (docs/specs/s3.md, "Mapping").

A tenant's root is a folder (its write cap held by the endpoint); a bucket is a subfolder of
the root; an object ``a/b/c`` is the file ``c`` in the folder ``b`` in the folder ``a`` of the
bucket, an ordinary immutable file, so `veil ls`, `veil get -r` and the gateway see the same
tree. Folders on the way are made when an object is put and removed when their last object is
deleted. Changes are compare-and-swap edits (``veil.client.folders``); within one endpoint
they are serialised per bucket, and a race with another writer is retried.

Imports from: veil.errors, veil.format, veil.client, veil.s3.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from veil.client.folders import Snapshot, child_caps, edit_folder, make_folder, read_folder
from veil.client.network import Network
from veil.errors import UsageError, WriteConflictError
from veil.format.folder import FILE, FOLDER, Entry
from veil.format.folder_caps import FolderReadCap, FolderWriteCap
from veil.format.folder_ops import Remove
from veil.format.names import name_problem
from veil.s3.batch import Detached, FolderBatcher
from veil.s3.errors import S3Error
from veil.s3.meta import MetaStore, ObjectMeta

MAX_KEY_BYTES = 1024
BUCKET_TTL = 5.0
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: int
    cap: str
    content_type: str
    meta: ObjectMeta


def check_bucket_name(name: str) -> str:
    if not _BUCKET.fullmatch(name) or ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name) or ".-" in name \
            or "-." in name:
        raise S3Error("InvalidBucketName", "the specified bucket is not valid", resource=name[:80])
    return name


def key_parts(key: str) -> list[str]:
    """An object key as folder names and a file name; keys a folder cannot hold are refused."""
    if not key:
        raise S3Error("InvalidArgument", "an object key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "your key is too long (at most 1024 bytes)")
    parts = key.split("/")
    for p in parts:
        problem = name_problem(p)
        if problem is not None:
            raise S3Error("InvalidArgument", f"this endpoint cannot store the key: a path component is {problem} "
                          "(keys are paths of folder names: no empty component, '.', '..', or a trailing '/')")
    return parts


def _retry(what: Callable[[], T]) -> T:
    for attempt in range(5):
        try:
            return what()
        except WriteConflictError:
            if attempt == 4:
                raise S3Error("SlowDown", "too many concurrent changes to this bucket; retry") from None
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class Store:
    def __init__(self, network: Callable[[], Network], meta: MetaStore) -> None:
        self.network = network
        self.meta = meta
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, tuple[FolderReadCap, FolderWriteCap | None, int]]] = {}
        self.batcher = FolderBatcher(_retry)

    def _lock(self, root: FolderWriteCap, bucket: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((root.to_string(), bucket), threading.Lock())

    # -- buckets ------------------------------------------------------------------------
    def list_buckets(self, root: FolderWriteCap) -> list[tuple[str, int]]:
        snap = read_folder(self.network(), root)
        return sorted((e.name, e.mtime or 0) for e in snap.entries.values() if e.kind == FOLDER)

    def _bucket_caps(self, root: FolderWriteCap, name: str) -> tuple[FolderReadCap, FolderWriteCap | None, int]:
        """A bucket's folder caps and creation time, remembered for BUCKET_TTL seconds: a bucket's
        folder only changes when the bucket is deleted, which this endpoint forgets at once."""
        ck = (root.to_string(), name)
        now = time.monotonic()
        with self._locks_lock:
            hit = self._buckets.get(ck)
        if hit is not None and hit[0] > now:
            return hit[1]
        snap = read_folder(self.network(), root)
        e = snap.get(name)
        if e is None or e.kind != FOLDER:
            raise S3Error("NoSuchBucket", "the specified bucket does not exist", resource=name)
        rc, wc = child_caps(snap, e)
        caps = (rc, wc, e.mtime or 0)
        with self._locks_lock:
            self._buckets[ck] = (now + BUCKET_TTL, caps)
        return caps

    def _forget(self, root: FolderWriteCap, name: str) -> None:
        with self._locks_lock:
            self._buckets.pop((root.to_string(), name), None)

    def bucket(self, root: FolderWriteCap, name: str) -> Snapshot:
        rc, wc, _ = self._bucket_caps(root, name)
        return read_folder(self.network(), wc or rc)

    def bucket_mtime(self, root: FolderWriteCap, name: str) -> int:
        return self._bucket_caps(root, name)[2]

    def create_bucket(self, root: FolderWriteCap, name: str) -> None:
        check_bucket_name(name)

        def once() -> None:
            snap = read_folder(self.network(), root)
            e = snap.get(name)
            if e is not None:
                if e.kind == FOLDER:
                    return  # us-east-1: creating a bucket you own again succeeds (other regions: 409)
                raise S3Error("BucketAlreadyExists", "the requested bucket name is not available", resource=name)
            make_folder(self.network(), snap, name)
            self._forget(root, name)

        with self._lock(root, name):
            _retry(once)

    def delete_bucket(self, root: FolderWriteCap, name: str) -> None:
        def once() -> None:
            net = self.network()
            snap = read_folder(net, root)
            e = snap.get(name)
            if e is None or e.kind != FOLDER:
                raise S3Error("NoSuchBucket", "the specified bucket does not exist", resource=name)
            rc, wc = child_caps(snap, e)
            if read_folder(net, wc or rc).entries:
                raise S3Error("BucketNotEmpty", "the bucket you tried to delete is not empty", resource=name)
            edit_folder(net, snap, [Remove(e)])
            self._forget(root, name)

        with self._lock(root, name):
            _retry(once)

    # -- objects ------------------------------------------------------------------------
    def _info(self, key: str, e: Entry) -> ObjectInfo:
        return ObjectInfo(key, e.size, e.mtime or 0, e.cap, e.mime or "binary/octet-stream", self.meta.get(e.cap))

    def head(self, root: FolderWriteCap, bucket: str, key: str) -> ObjectInfo:
        parts = key_parts(key)
        net = self.network()
        snap = self.bucket(root, bucket)
        for name in parts[:-1]:
            e = snap.get(name)
            if e is None or e.kind != FOLDER:
                raise S3Error("NoSuchKey", "the specified key does not exist", resource=key)
            rc, wc = child_caps(snap, e)
            snap = read_folder(net, wc or rc)
        e = snap.get(parts[-1])
        if e is None or e.kind != FILE:
            raise S3Error("NoSuchKey", "the specified key does not exist", resource=key)
        return self._info(key, e)

    def link(self, root: FolderWriteCap, bucket: str, key: str, cap: str, size: int, content_type: str,
             meta: ObjectMeta, mtime: int | None = None) -> ObjectInfo:  # fmt: skip
        """Make ``key`` name the uploaded file ``cap`` (replacing what it named)."""
        parts = key_parts(key)
        when = int(time.time()) if mtime is None else mtime
        entry = Entry(name=parts[-1], kind=FILE, cap=cap, size=size, mtime=when, mime=content_type[:128] or None)
        self.meta.put(cap, meta)

        for attempt in range(5):
            folder = self._resolve(root, bucket, key, parts[:-1])
            try:
                self.batcher.put(self.network(), folder, entry)
                break
            except Detached:
                if attempt == 4:
                    raise S3Error("SlowDown", "too many concurrent changes to this bucket; retry") from None
            except UsageError as e:  # a name colliding once case-folded
                raise S3Error("InvalidArgument", f"this endpoint cannot store the key: {e}", resource=key) from None
        return self._info(key, entry)

    def _resolve(self, root: FolderWriteCap, bucket: str, key: str, folders: list[str]) -> FolderWriteCap:
        """The write cap of the folder holding ``key``, making the missing folders on the way."""
        net = self.network()
        if not folders:
            _, wc, _ = self._bucket_caps(root, bucket)
            if wc is None:
                raise S3Error("AccessDenied", "this bucket is read-only here", resource=key)
            return wc
        snap = self.bucket(root, bucket)
        for name in folders:
            e = snap.get(name)
            if e is None:
                with self._lock(root, bucket):  # one creator per bucket; others see its folder
                    return self._make_path(root, bucket, key, folders)
            snap = _into(net, snap, e, name, key)
        return _writable(snap, key)

    def _make_path(self, root: FolderWriteCap, bucket: str, key: str, folders: list[str]) -> FolderWriteCap:
        def once() -> FolderWriteCap:
            net = self.network()
            snap = self.bucket(root, bucket)
            for name in folders:
                e = snap.get(name)
                if e is None:
                    snap = read_folder(net, make_folder(net, snap, name))
                    continue
                snap = _into(net, snap, e, name, key)
            return _writable(snap, key)

        try:
            return _retry(once)
        except UsageError as e:
            raise S3Error("InvalidArgument", f"this endpoint cannot store the key: {e}", resource=key) from None

    def delete(self, root: FolderWriteCap, bucket: str, key: str) -> None:
        """Remove ``key`` (nothing if it is absent, as S3), then every folder it leaves empty."""
        try:
            parts = key_parts(key)
        except S3Error:
            return

        def once() -> None:
            net = self.network()
            chain = [self.bucket(root, bucket)]
            for name in parts[:-1]:
                e = chain[-1].get(name)
                if e is None or e.kind != FOLDER:
                    return
                rc, wc = child_caps(chain[-1], e)
                chain.append(read_folder(net, wc or rc))
            leaf = chain[-1]
            with self.batcher.folder_lock(leaf.rcap.slot_id):
                fresh = read_folder(net, leaf.wcap or leaf.rcap)
                e = fresh.get(parts[-1])
                if e is None or e.kind != FILE:
                    return
                edit_folder(net, fresh, [Remove(e)])
            for depth in range(len(chain) - 1, 0, -1):
                child = chain[depth]
                with self.batcher.folder_lock(child.rcap.slot_id):
                    if read_folder(net, child.wcap or child.rcap).entries:
                        break
                    parent = read_folder(net, chain[depth - 1].wcap or chain[depth - 1].rcap)
                    pe = parent.get(parts[depth - 1])
                    if pe is None or pe.kind != FOLDER:
                        break
                    edit_folder(net, parent, [Remove(pe)])
                    self.batcher.detach(child.rcap.slot_id)

        with self._lock(root, bucket):
            _retry(once)

    def walk(self, snap: Snapshot, base: str, prefix: str, delimiter: str, after: str) -> Iterator[tuple[str, ObjectInfo | None]]:
        """Keys under ``snap`` in order, pruned by prefix and marker; with ``delimiter`` "/" a
        subtree past the prefix comes back as one collapsed item (its common prefix, None)."""
        entries = sorted(snap.entries.values(), key=lambda e: e.name + ("/" if e.kind == FOLDER else ""))
        for e in entries:
            full = base + e.name
            if e.kind == FILE:
                if full.startswith(prefix) and full > after:
                    yield full, self._info(full, e)
                continue
            p = full + "/"
            if not (p.startswith(prefix) or prefix.startswith(p)):
                continue
            if after >= p and not after.startswith(p):
                continue
            if delimiter == "/" and p.startswith(prefix) and len(p) > len(prefix):
                yield p, None
                continue
            rc, wc = child_caps(snap, e)
            yield from self.walk(read_folder(self.network(), wc or rc), p, prefix, delimiter, after)


def _into(net: Network, snap: Snapshot, e: Entry, name: str, key: str) -> Snapshot:
    """The folder entry ``e`` (named ``name``) on the path of object ``key``, read."""
    if e.kind != FOLDER:
        raise S3Error("InvalidArgument", "this endpoint cannot store the key: an object named "
                      f"{name[:60]!r} is in its path (keys are folder paths)", resource=key)  # fmt: skip
    rc, wc = child_caps(snap, e)
    return read_folder(net, wc or rc)


def _writable(snap: Snapshot, key: str) -> FolderWriteCap:
    if snap.wcap is None:
        raise S3Error("AccessDenied", "this bucket is read-only here", resource=key)
    return snap.wcap
