"""Shares and manifests on disk, written atomically and read with Merkle range proofs.

    ROOT/shares/<si[:2]>/<si>/<shnum>    complete share files (format/share.py)
    ROOT/shares/<si[:2]>/<si>/manifest   the file's manifest
    ROOT/incoming/<upload id>            shares being written (removed on restart)

A share becomes visible only by rename after its data and trees are fsynced, so a crash
mid-write never leaves half a share. An existing share or manifest is never overwritten.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from veil.durable import fsync_dir
from veil.errors import IntegrityError, NotFoundError, StorageFullError, UsageError, VeilError
from veil.format.manifest import MAX_MANIFEST, parse_manifest
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE, HEADER_SIZE, SEGMENT_TREE, ShareHeader, parse_header
from veil.protocol.storage import LEAF, MAX_RANGE_BYTES, UploadRequest, encode_range_head

UPLOAD_IDLE_SECONDS = 600
RESERVE_FREE_BYTES = 64 << 20


class ConflictError(VeilError):
    """Something different is already stored under this name; it is kept, the new one refused."""

    exit_code = 6


def _nospace(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass
class Upload:
    id: str
    req: UploadRequest
    path: Path
    fd: int
    next_block: int = 0
    block_leaves: list[bytes] = field(default_factory=list)
    seg_leaves: list[bytes] = field(default_factory=list)
    touched: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ShareStore:
    def __init__(self, root: Path, capacity: int | None = None) -> None:
        self.root = root
        self.capacity = capacity
        self.shares_dir = root / "shares"
        self.incoming = root / "incoming"
        self.shares_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.incoming, ignore_errors=True)
        self.incoming.mkdir(parents=True, exist_ok=True)
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.RLock()  # commit_upload opens an existing share while holding it
        self._cache: OrderedDict[Path, tuple[ShareHeader, Levels, Levels]] = OrderedDict()
        self._used = self._scan_used()
        self._reserved = 0

    # -- accounting ---------------------------------------------------------------------
    def _scan_used(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.shares_dir):
            for f in files:
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return total

    def usage(self) -> dict[str, int]:
        st = os.statvfs(self.root)
        free = st.f_bavail * st.f_frsize
        shares = sum(1 for p in self.shares_dir.glob("*/*/*") if p.name.isdigit())
        return {"used": self._used, "capacity": self.capacity or 0, "disk_free": free, "shares": shares}

    def _reserve(self, nbytes: int) -> None:
        with self._lock:
            if self.capacity is not None and self._used + self._reserved + nbytes > self.capacity:
                raise StorageFullError(
                    f"no space: share of {nbytes} bytes exceeds this node's remaining capacity "
                    f"({max(0, self.capacity - self._used - self._reserved)} bytes)"
                )
            st = os.statvfs(self.root)
            if st.f_bavail * st.f_frsize - self._reserved - nbytes < RESERVE_FREE_BYTES:
                raise StorageFullError("no space: the node's disk is full")
            self._reserved += nbytes

    def _unreserve(self, nbytes: int) -> None:
        with self._lock:
            self._reserved -= nbytes

    # -- paths --------------------------------------------------------------------------
    def _dir(self, si: bytes) -> Path:
        h = si.hex()
        return self.shares_dir / h[:2] / h

    def share_path(self, si: bytes, shnum: int) -> Path:
        return self._dir(si) / str(shnum)

    # -- writing ------------------------------------------------------------------------
    def begin_upload(self, req: UploadRequest) -> str:
        self._expire_uploads()
        total = HEADER_SIZE + req.share_len + 2 * Levels.stored_size(req.nseg)
        self._reserve(total)
        uid = secrets.token_hex(16)
        path = self.incoming / uid
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            self._unreserve(total)
            raise
        with self._lock:
            self._uploads[uid] = Upload(uid, req, path, fd)
        return uid

    def _get_upload(self, uid: str) -> Upload:
        with self._lock:
            up = self._uploads.get(uid)
        if up is None:
            raise NotFoundError("no such upload (it may have expired or the node restarted)")
        up.touched = time.monotonic()
        return up

    def upload_request(self, uid: str) -> UploadRequest:
        """What an upload in progress is for (storage index, share number, sizes)."""
        return self._get_upload(uid).req

    def write_blocks(self, uid: str, start: int, body: memoryview) -> int:
        """Append blocks [start, start+count) from ``body`` (count x (seg leaf || block))."""
        up = self._get_upload(uid)
        with up.lock:
            req = up.req
            if start != up.next_block:
                raise IntegrityError(f"blocks must arrive in order: expected {up.next_block}, got {start}")
            off = 0
            i = start
            while off < len(body):
                if i >= req.nseg:
                    raise IntegrityError("more blocks than the share has")
                blen = req.bsize if i < req.nseg - 1 else req.lbsize
                if off + LEAF + blen > len(body):
                    raise IntegrityError("upload body ends inside a block")
                seg_leaf = bytes(body[off : off + LEAF])
                block = body[off + LEAF : off + LEAF + blen]
                try:
                    os.pwrite(up.fd, block, HEADER_SIZE + i * req.bsize)
                except OSError as e:
                    self._abort(up)
                    if _nospace(e):
                        raise StorageFullError("no space: the node's disk filled up while writing") from e
                    raise
                up.block_leaves.append(BLOCK_TREE.leaf(block))
                up.seg_leaves.append(seg_leaf)
                off += LEAF + blen
                i += 1
            up.next_block = i
            return i

    def commit_upload(self, uid: str, root: bytes, segroot: bytes) -> bytes:
        up = self._get_upload(uid)
        with up.lock:
            req = up.req
            total = HEADER_SIZE + req.share_len + 2 * Levels.stored_size(req.nseg)
            try:
                if up.next_block != req.nseg:
                    raise IntegrityError(f"share incomplete: {up.next_block} of {req.nseg} blocks received")
                btree = Levels.build(BLOCK_TREE, up.block_leaves)
                stree = Levels.build(SEGMENT_TREE, up.seg_leaves)
                if btree.root() != root:
                    raise IntegrityError("share root does not match the blocks received")
                if stree.root() != segroot:
                    raise IntegrityError("segment root does not match the segment hashes received")
                hdr = ShareHeader(req.si, req.shnum, req.nseg, req.bsize, req.lbsize, root, segroot)
                try:
                    os.pwrite(up.fd, hdr.to_bytes(), 0)
                    os.pwrite(up.fd, btree.to_bytes() + stree.to_bytes(), hdr.tree_offset)
                    os.fsync(up.fd)
                except OSError as e:
                    if _nospace(e):
                        raise StorageFullError("no space: the node's disk filled up while writing") from e
                    raise
                final = self.share_path(req.si, req.shnum)
                final.parent.mkdir(parents=True, exist_ok=True)
                with self._lock:
                    if final.exists():
                        existing = self._open_share(final)[0]
                        if existing.root != root:
                            raise ConflictError("a different share is already stored under this number; kept it")
                    else:
                        os.rename(up.path, final)
                        self._used += hdr.file_len
                fsync_dir(final.parent)
                return root
            finally:
                self._abort(up, unreserve=total)

    def _abort(self, up: Upload, unreserve: int | None = None) -> None:
        with self._lock:
            if self._uploads.pop(up.id, None) is None:
                return
        try:
            os.close(up.fd)
        except OSError:
            pass
        up.path.unlink(missing_ok=True)
        req = up.req
        self._unreserve(unreserve or HEADER_SIZE + req.share_len + 2 * Levels.stored_size(req.nseg))

    def abort_upload(self, uid: str) -> None:
        self._abort(self._get_upload(uid))

    def _expire_uploads(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [u for u in self._uploads.values() if now - u.touched > UPLOAD_IDLE_SECONDS]
        for u in stale:
            self._abort(u)

    def put_manifest(self, si: bytes, data: bytes) -> None:
        if len(data) > MAX_MANIFEST:
            raise IntegrityError("manifest too large")
        man = parse_manifest(data)
        if man.si != si:
            raise IntegrityError("manifest belongs to another storage index")
        d = self._dir(si)
        d.mkdir(parents=True, exist_ok=True)
        path = d / "manifest"
        with self._lock:
            if path.exists():
                if path.read_bytes() != data:
                    raise ConflictError("a different manifest is already stored for this file; kept it")
                return
            tmp = self.incoming / ("m-" + secrets.token_hex(8))
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                if _nospace(e):
                    raise StorageFullError("no space: the node's disk is full") from e
                raise
            self._used += len(data)
        fsync_dir(d)

    # -- reading ------------------------------------------------------------------------
    def list_shares(self, si: bytes) -> tuple[list[int], bytes | None]:
        d = self._dir(si)
        if not d.is_dir():
            return [], None
        shnums = sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())
        mpath = d / "manifest"
        manifest = mpath.read_bytes() if mpath.exists() else None
        return shnums, manifest

    def _open_share(self, path: Path) -> tuple[ShareHeader, Levels, Levels]:
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        try:
            with open(path, "rb") as f:
                hdr = parse_header(f.read(HEADER_SIZE))
                f.seek(hdr.tree_offset)
                trees = f.read(2 * hdr.tree_len)
        except FileNotFoundError as e:
            raise NotFoundError("no such share") from e
        if len(trees) != 2 * hdr.tree_len:
            raise IntegrityError("share file is truncated")
        entry = (
            hdr,
            Levels.from_bytes(BLOCK_TREE, trees[: hdr.tree_len], hdr.nseg),
            Levels.from_bytes(SEGMENT_TREE, trees[hdr.tree_len :], hdr.nseg),
        )
        with self._lock:
            self._cache[path] = entry
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return entry

    def read_range(self, si: bytes, shnum: int, start: int, count: int) -> tuple[bytes, int, int, Path]:
        """(head, offset, length, path) of the reply for blocks [start, start+count)."""
        path = self.share_path(si, shnum)
        hdr, btree, stree = self._open_share(path)
        if not (0 <= start < hdr.nseg and count >= 1):
            raise UsageError("block range outside the share")
        count = min(count, hdr.nseg - start)
        end = start + count
        length = hdr.block_offset(end - 1) + hdr.block_len(end - 1) - hdr.block_offset(start)
        if length > MAX_RANGE_BYTES:
            raise UsageError(f"block range of {length} bytes exceeds the {MAX_RANGE_BYTES}-byte limit")
        head = encode_range_head(start, count, btree.range_proof(start, end), stree.range_proof(start, end))
        return head, hdr.block_offset(start), length, path

    def storage_indexes(self) -> list[bytes]:
        """Every storage index with a share or manifest here (for a node's repairer and drain)."""
        out = []
        for p in self.shares_dir.glob("*/*"):
            try:
                out.append(bytes.fromhex(p.name))
            except ValueError:
                continue
        return sorted(out)

    def share_blocks(self, si: bytes, shnum: int) -> tuple[ShareHeader, Iterator[tuple[bytes, bytes]]]:
        """A stored share's header and its (segment leaf, block) pairs in order, read from disk
        (to hand the share to another node; the receiver re-checks every hash)."""
        path = self.share_path(si, shnum)
        hdr, _, stree = self._open_share(path)
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

    def delete_share(self, si: bytes, shnum: int) -> None:
        path = self.share_path(si, shnum)
        with self._lock:
            self._cache.pop(path, None)
            try:
                size = path.stat().st_size
                path.unlink()
                self._used -= size
            except FileNotFoundError:
                pass
