"""Shares and manifests on disk, in slots keyed by (storage index, manifest hash).

    ROOT/slots/<si[:2]>/<si>/<mhash>/manifest   the slot's manifest (present before any share)
    ROOT/slots/<si[:2]>/<si>/<mhash>/<shnum>    complete share files (format/share.py)
    ROOT/incoming/<id>                          shares being written (removed on restart)

A storage index has at most ``MAX_SLOTS_PER_SI`` slots. A share enters a slot only with the
slot's manifest and only if it fits it (storage/slot.py ``check_slot``), so every share in a
slot is one the manifest names. A share becomes visible only by rename after its data and
trees are fsynced; renames go through the group committer (storage/committer.py), which
fsyncs the changed directories before the writer is answered. Nothing is ever overwritten:
committing a share that is already there is an idempotent success. v1 data (``ROOT/shares/``)
is not read.

What the HTTP role and an in-process grid call (every check of the wire path is made here):

    begin_upload(UploadRequest, peer) -> id         write_blocks(id, start, body) -> next
    commit_upload(id, Commit) -> root               abort_upload(id)
    put_oneshot(si, shnum, body) -> root            (``*_from`` variants read a body by ``readinto``)
    list_shares(si, mhash) -> (shnums, manifest)    read_range_bytes(si, mhash, shnum, start, count, manifest)
    slots(si), manifest(si, mhash), holds(si, shnum), storage_indexes(), share_blocks(...), delete_share(...)

Errors: NotFoundError (404), IntegrityError/UsageError (400), ConflictError (409), SessionsFull
(503 + Retry-After), StorageFullError (507).

Imports from: veil.durable, veil.errors, veil.format, veil.protocol, veil.storage.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from veil.errors import (
    IntegrityError,
    NotAllowedError,
    NotFoundError,
    StorageFullError,
    UsageError,
    VeilError,
)
from veil.format.deletion import key_matches
from veil.format.manifest import parse_manifest
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE, HEADER_SIZE, SEGMENT_TREE, ShareHeader
from veil.protocol.storage import (
    LEAF,
    MAX_ONESHOT_BODY,
    MAX_SLOTS_PER_SI,
    Commit,
    UploadRequest,
    oneshot_head_size,
    parse_oneshot_head,
)

from .committer import GroupCommitter
from .reading import SlotReader
from .sessions import Sessions
from .slot import blocks_in_body, check_geometry, check_slot

RESERVE_FREE_BYTES = 64 << 20
CHUNK = 1 << 20
REAP_INTERVAL = 10.0
_local = threading.local()
Readinto = Callable[[memoryview], None]


class ConflictError(VeilError):
    """This storage index already has as many different manifests as the node keeps; refused."""

    exit_code = 6


def _nospace(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def _buffer() -> memoryview:
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(CHUNK))
    return buf


def reader_of(body: bytes | bytearray | memoryview) -> Readinto:
    """A ``readinto`` over an in-memory body (tests and in-process grids)."""
    src = memoryview(body)
    pos = 0

    def readinto(dst: memoryview) -> None:
        nonlocal pos
        if pos + len(dst) > len(src):
            raise IntegrityError("body ends early")
        dst[:] = src[pos : pos + len(dst)]
        pos += len(dst)

    return readinto


class ShareStore(SlotReader):
    def __init__(self, root: Path, capacity: int | None = None, clock: Callable[[], float] = time.monotonic,
                 reap_interval: float = REAP_INTERVAL) -> None:
        self.root = root
        self.capacity = capacity
        self.incoming = root / "incoming"
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir(parents=True, exist_ok=True)
        SlotReader.__init__(self, root / "slots")
        self._lock = threading.RLock()
        self._used = self._clean_and_scan()
        self._reserved = 0
        self._commit_sem = threading.BoundedSemaphore(2)  # trees of big shares are built two at a time
        self.sessions = Sessions(self.incoming, self._unreserve, clock)
        self.committer = GroupCommitter(root)
        self.on_delete: Callable[[bytes, bytes, int], None] | None = None  # (si, mhash, shnum): admission refunds
        self._stop = threading.Event()
        if reap_interval > 0:
            threading.Thread(target=self._reap_loop, args=(reap_interval,), name="upload-reaper", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.committer.close()

    def _reap_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sessions.reap()

    # -- accounting ---------------------------------------------------------------------
    def _clean_and_scan(self) -> int:
        """Bytes stored; slots left without shares by a crash are removed."""
        total = 0
        for si in self.storage_indexes():
            for mhash in self.slots(si):
                d = self.slot_dir(si, mhash)
                files = list(d.iterdir())
                if not any(p.name.isdigit() for p in files):
                    shutil.rmtree(d, ignore_errors=True)
                    continue
                total += sum(p.stat().st_size for p in files)
        return total

    def usage(self) -> dict[str, int]:
        st = os.statvfs(self.root)
        free = st.f_bavail * st.f_frsize
        shares = sum(1 for p in self.slots_dir.glob("*/*/*/*") if p.name.isdigit())
        return {"used": self._used, "capacity": self.capacity or 0, "disk_free": free, "shares": shares,
                "uploads_open": len(self.sessions)}

    def check_room(self, nbytes: int) -> None:
        """StorageFullError now if a share of ``nbytes`` would not fit (reserves nothing): a node
        says "no space" before it looks at who asks (admission)."""
        with self._lock:
            self._room_locked(nbytes)

    def _reserve(self, nbytes: int) -> None:
        with self._lock:
            self._room_locked(nbytes)
            self._reserved += nbytes

    def _room_locked(self, nbytes: int) -> None:
        if self.capacity is not None and self._used + self._reserved + nbytes > self.capacity:
            raise StorageFullError(
                f"no space: share of {nbytes} bytes exceeds this node's remaining capacity "
                f"({max(0, self.capacity - self._used - self._reserved)} bytes)"
            )
        st = os.statvfs(self.root)
        if st.f_bavail * st.f_frsize - self._reserved - nbytes < RESERVE_FREE_BYTES:
            raise StorageFullError("no space: the node's disk is full")

    def _unreserve(self, nbytes: int) -> None:
        with self._lock:
            self._reserved -= nbytes

    # -- receiving blocks ---------------------------------------------------------------
    def _receive(self, fd: int, nseg: int, bsize: int, lbsize: int, start: int, count: int,
                 readinto: Readinto) -> tuple[bytearray, bytearray]:
        """Read ``count`` x (segment leaf || block) into their places in ``fd``, hashing each
        block as it streams through one reused buffer; the block leaves and segment leaves."""
        buf = _buffer()
        bleaves, sleaves = bytearray(), bytearray()
        for i in range(start, start + count):
            readinto(buf[:LEAF])
            sleaves += buf[:LEAF]
            h = BLOCK_TREE.leaf.new()
            pos, left = HEADER_SIZE + i * bsize, bsize if i < nseg - 1 else lbsize
            while left:
                mv = buf[: min(left, CHUNK)]
                readinto(mv)
                h.update(mv)
                os.pwrite(fd, mv, pos)
                pos += len(mv)
                left -= len(mv)
            bleaves += h.digest()
        return bleaves, sleaves

    def _finish(self, fd: int, hdr: ShareHeader, bleaves: bytes, sleaves: bytes) -> None:
        """Build both trees, check them against the header's roots, write header and trees, fsync."""
        n = hdr.nseg

        def split(b: bytes) -> list[bytes]:
            return [b[i * LEAF : (i + 1) * LEAF] for i in range(n)]

        with self._commit_sem:
            btree = Levels.build(BLOCK_TREE, split(bleaves))
            if btree.root() != hdr.root:
                raise IntegrityError("share root does not match the blocks received")
            stree = Levels.build(SEGMENT_TREE, split(sleaves))
            if stree.root() != hdr.segroot:
                raise IntegrityError("segment root does not match the segment hashes received")
            os.pwrite(fd, hdr.to_bytes(), 0)
            os.pwrite(fd, btree.to_bytes() + stree.to_bytes(), hdr.tree_offset)
        if not self.committer.data_synced_by_batch:
            os.fsync(fd)

    # -- installing into a slot ---------------------------------------------------------
    def _check_room(self, si: bytes, mhash: bytes) -> None:
        if (self.slot_dir(si, mhash) / "manifest").exists():
            return
        if len(self.slots(si)) >= MAX_SLOTS_PER_SI:
            raise ConflictError(f"this storage index already has {MAX_SLOTS_PER_SI} different manifests here; refused")

    def _write_manifest_tmp(self, data: bytes) -> Path:
        tmp = self.incoming / ("m-" + secrets.token_hex(8))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            if not self.committer.data_synced_by_batch:
                os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def _install(self, si: bytes, mhash: bytes, shnum: int, tmp: Path, manifest: bytes, file_len: int) -> None:
        """Rename the fsynced share ``tmp`` (and the manifest, for a new slot) into the slot, in
        the committer's next batch; returns once the directories are durable."""
        sdir = self.slot_dir(si, mhash)
        mtmp = None if (sdir / "manifest").exists() else self._write_manifest_tmp(manifest)

        def install() -> tuple[None, set[Path]]:
            nonlocal mtmp
            changed: set[Path] = set()
            with self._lock:
                if not (sdir / "manifest").exists():
                    self._check_room(si, mhash)
                    for d in (sdir.parent.parent, sdir.parent, sdir):
                        if not d.is_dir():
                            d.mkdir()
                            changed.add(d.parent)
                    if mtmp is None:  # the slot vanished since we looked (its last share deleted)
                        mtmp = self._write_manifest_tmp(manifest)
                    os.rename(mtmp, sdir / "manifest")
                    mtmp = None
                    self._used += len(manifest)
                    changed.add(sdir)
                final = sdir / str(shnum)
                if final.exists():
                    tmp.unlink(missing_ok=True)  # the same share again (repair, a retry): already here
                else:
                    os.rename(tmp, final)
                    self._used += file_len
                    changed.add(sdir)
            return None, changed

        try:
            self.committer.run(install)
        finally:
            if mtmp is not None:
                mtmp.unlink(missing_ok=True)

    # -- upload sessions ----------------------------------------------------------------
    def begin_upload(self, req: UploadRequest, peer: str = "") -> str:
        """Announce a share; space is reserved now, nothing is opened until the first block.
        SessionsFull past the per-peer or total bound, UsageError for refused geometry."""
        check_geometry(req.nseg, req.bsize, req.lbsize)
        self.sessions.admit(peer)
        total = HEADER_SIZE + req.share_len + 2 * Levels.stored_size(req.nseg)
        self._reserve(total)
        try:
            return self.sessions.add(req, peer, total).id
        except BaseException:
            self._unreserve(total)
            raise

    def upload_request(self, uid: str) -> UploadRequest:
        """What an upload in progress is for (storage index, share number, sizes)."""
        return self.sessions.get(uid).req

    def write_blocks_from(self, uid: str, start: int, nbytes: int, readinto: Readinto) -> int:
        """Blocks [start, start+count) from a body of ``nbytes`` (count x (seg leaf || block)),
        read through ``readinto``. The session and the size are checked before a byte is read."""
        up = self.sessions.get(uid)
        with up.lock:
            if up.done:
                raise self._gone()
            req = up.req
            if start != up.next_block:
                raise IntegrityError(f"blocks must arrive in order: expected {up.next_block}, got {start}")
            count = blocks_in_body(req.nseg, req.bsize, req.lbsize, start, nbytes)
            try:
                fd = self.sessions.open_file(up)
                try:
                    bleaves, sleaves = self._receive(fd, req.nseg, req.bsize, req.lbsize, start, count, readinto)
                    tree_off = HEADER_SIZE + req.share_len
                    os.pwrite(fd, bleaves, tree_off + LEAF * start)
                    os.pwrite(fd, sleaves, tree_off + Levels.stored_size(req.nseg) + LEAF * start)
                finally:
                    os.close(fd)
            except OSError as e:
                self.sessions.remove(up)
                if _nospace(e):
                    raise StorageFullError("no space: the node's disk filled up while writing") from e
                raise
            up.next_block = start + count
            return up.next_block

    def write_blocks(self, uid: str, start: int, body: bytes | memoryview) -> int:
        return self.write_blocks_from(uid, start, len(body), reader_of(body))

    @staticmethod
    def _gone() -> VeilError:
        return NotFoundError("no such upload (it may have expired or the node restarted)")

    def commit_upload(self, uid: str, c: Commit) -> bytes:
        """Commit a complete upload into the slot of ``c.manifest``; the share's root."""
        up = self.sessions.get(uid)
        with up.lock:
            if up.done:
                raise self._gone()
            req = up.req
            try:
                if up.next_block != req.nseg:
                    raise IntegrityError(f"share incomplete: {up.next_block} of {req.nseg} blocks received")
                _, mhash = check_slot(req.si, req.shnum, req.nseg, req.bsize, req.lbsize, c.root, c.segroot, c.manifest)
                self._check_room(req.si, mhash)
                hdr = ShareHeader(req.si, req.shnum, req.nseg, req.bsize, req.lbsize, c.root, c.segroot)
                fd = self.sessions.open_file(up)
                try:
                    tree_off, tlen = hdr.tree_offset, hdr.tree_len
                    bleaves = os.pread(fd, LEAF * req.nseg, tree_off)
                    sleaves = os.pread(fd, LEAF * req.nseg, tree_off + tlen)
                    self._finish(fd, hdr, bleaves, sleaves)
                finally:
                    os.close(fd)
                self._install(req.si, mhash, req.shnum, up.path, c.manifest, hdr.file_len)
                return c.root
            except OSError as e:
                if _nospace(e):
                    raise StorageFullError("no space: the node's disk filled up while writing") from e
                raise
            finally:
                self.sessions.remove(up)

    def abort_upload(self, uid: str) -> None:
        up = self.sessions.get(uid)
        with up.lock:
            self.sessions.remove(up)

    # -- one-shot small shares ----------------------------------------------------------
    def put_oneshot_from(self, si: bytes, shnum: int, nbytes: int, readinto: Readinto) -> tuple[bytes, bytes]:
        """Store a whole share and its manifest from a one-shot body of ``nbytes``
        (protocol/storage.py); every check is made before the blocks are read. (root, slot's mhash)"""
        if nbytes > MAX_ONESHOT_BODY:
            raise UsageError(f"one-shot body of {nbytes} bytes exceeds {MAX_ONESHOT_BODY}")
        if nbytes < 9:
            raise IntegrityError("one-shot share is truncated")
        first = bytearray(9)
        readinto(memoryview(first))
        size = oneshot_head_size(memoryview(first))
        if size > nbytes:
            raise IntegrityError("one-shot share head is longer than the body")
        raw = bytearray(size)
        raw[:9] = first
        readinto(memoryview(raw)[9:])
        head = parse_oneshot_head(memoryview(raw))
        check_geometry(head.nseg, head.bsize, head.lbsize)
        if nbytes != head.size + head.blocks_len:
            raise IntegrityError("one-shot body length does not match its head")
        _, mhash = check_slot(si, shnum, head.nseg, head.bsize, head.lbsize, head.root, head.segroot, head.manifest)
        self._check_room(si, mhash)
        hdr = ShareHeader(si, shnum, head.nseg, head.bsize, head.lbsize, head.root, head.segroot)
        total = hdr.file_len + len(head.manifest)
        self._reserve(total)
        tmp = self.incoming / ("s-" + secrets.token_hex(16))
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                bleaves, sleaves = self._receive(fd, head.nseg, head.bsize, head.lbsize, 0, head.nseg, readinto)
                self._finish(fd, hdr, bytes(bleaves), bytes(sleaves))
            finally:
                os.close(fd)
            self._install(si, mhash, shnum, tmp, head.manifest, hdr.file_len)
            return head.root, mhash
        except OSError as e:
            if _nospace(e):
                raise StorageFullError("no space: the node's disk is full") from e
            raise
        finally:
            tmp.unlink(missing_ok=True)
            self._unreserve(total)

    def put_oneshot(self, si: bytes, shnum: int, body: bytes | memoryview) -> bytes:
        return self.put_oneshot_from(si, shnum, len(body), reader_of(body))[0]

    # -- removing -----------------------------------------------------------------------
    def delete_share(self, si: bytes, mhash: bytes, shnum: int) -> None:
        """Remove one share; a slot left without shares is removed with its manifest."""
        d = self.slot_dir(si, mhash)
        path = d / str(shnum)
        with self._lock:
            self.forget(path)
            try:
                size = path.stat().st_size
                path.unlink()
                self._used -= size
            except FileNotFoundError:
                return
            if self.on_delete is not None:
                self.on_delete(si, mhash, shnum)
            if not any(p.name.isdigit() for p in d.iterdir()):
                m = d / "manifest"
                self._used -= m.stat().st_size if m.exists() else 0
                shutil.rmtree(d, ignore_errors=True)
                try:
                    d.parent.rmdir()
                except OSError:
                    pass

    def delete_slot(self, si: bytes, mhash: bytes, key: bytes) -> list[int]:
        """Remove every share of slot (si, mhash) if ``key`` opens the deletion commitment in its
        manifest (NotAllowedError otherwise); the share numbers removed, [] when none are here."""
        shnums, manifest = self.list_shares(si, mhash)
        if manifest is None:
            return []
        if not key_matches(key, parse_manifest(manifest).delete):
            raise NotAllowedError("that deletion key does not open this file's deletion commitment "
                                  "(only its uploader can delete it)")  # fmt: skip
        for shnum in shnums:
            self.delete_share(si, mhash, shnum)
        return shnums

    def share_blocks(self, si: bytes, mhash: bytes, shnum: int) -> tuple[ShareHeader, Iterator[tuple[bytes, bytes]]]:
        """A stored share's header and its (segment leaf, block) pairs in order, read from disk
        (to hand the share to another node; the receiver re-checks every hash)."""
        path = self.share_path(si, mhash, shnum)
        hdr, _, stree = self.open_share(path)
        seg_leaves = stree.levels[0]

        def pairs() -> Iterator[tuple[bytes, bytes]]:
            with open(path, "rb") as f:
                for i in range(hdr.nseg):
                    f.seek(hdr.block_offset(i))
                    block = f.read(hdr.block_len(i))
                    if len(block) != hdr.block_len(i):
                        raise IntegrityError("share file is truncated")
                    yield seg_leaves[i], block

        return hdr, pairs()
