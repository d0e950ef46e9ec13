"""Upload: encrypt, erasure-code and spread a file over storage nodes in constant memory.

Pipeline: the calling thread reads a segment into a reused buffer, seals it in place,
hashes it and erasure-codes it; one sender thread per share hashes that share's blocks
and streams them to its node in batches. Bounded queues keep memory flat whatever the file
size. Shares go to nodes in rendezvous order (protocol/placement.py); a node that refuses
or fails at the start is replaced by the next in order; the upload succeeds only if shares
land on at least ``happy`` distinct nodes. Each share is committed together with the manifest
(one round trip per share, all shares in parallel).

A small file (at most ``SMALL_FILE`` bytes, and each share within one request) takes the
one-shot path instead: it is sealed and erasure-coded in memory and every share travels with its
manifest in one ``PUT /v1/shares/{si}/{shnum}``, all nodes in parallel: about one round trip.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import queue
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from veil.erasure import CODEC, Codec
from veil.errors import UnavailableError, UsageError, VeilError
from veil.format import caps
from veil.format.deletion import deletion_commitment, deletion_key
from veil.format.manifest import Manifest
from veil.format.merkle import Levels
from veil.format.segments import SegmentCipher, seal_metadata, segment_count
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import Commit, UploadRequest
from veil.protocol.transport import StorageTransport, bulk_timeout

from .network import Network
from .place import place_shares
from .progress import Progress, nothing
from .small import check_params, fits_oneshot, upload_small
from .tickets import admitted, refused_admission

log = logging.getLogger("veil.upload")

SEGMENT_SIZE = 1 << 20
BATCH_BYTES = 2 << 20
QUEUE_DEPTH = 2
SMALL_FILE = 4 << 20  # files up to this size go by the one-shot path (one request per share)


@dataclass
class UploadResult:
    cap: caps.ReadCap
    manifest: Manifest
    placement: dict[int, NodeInfo]
    warnings: list[str] = field(default_factory=list)


class _Sender(threading.Thread):
    """Streams one share to one node; computes that share's block-tree leaves on the way."""

    def __init__(self, shnum: int, node: NodeInfo, transport: StorageTransport, uid: str) -> None:
        super().__init__(name=f"send-{shnum}", daemon=True)
        self.shnum, self.node, self.transport, self.uid = shnum, node, transport, uid
        self.q: queue.Queue[tuple[int, list[tuple[bytes, bytes]]] | None] = queue.Queue(QUEUE_DEPTH)
        self.leaves: list[bytes] = []
        self.error: VeilError | None = None

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            start, entries = item
            parts: list[bytes] = []
            for seg_leaf, block in entries:
                # Leaves are computed even for a share whose node failed, so the manifest can
                # name every share root and the missing share can be repaired later.
                self.leaves.append(BLOCK_TREE.leaf(block))
                parts.append(seg_leaf)
                parts.append(block)
            if self.error is not None:
                continue
            body = b"".join(parts)
            try:
                self.transport.write(self.node, self.uid, start, body, timeout=bulk_timeout(len(body)))
            except VeilError as e:
                self.error = e


class ShareUploader:
    """Takes sealed segments in order and streams their erasure-coded blocks to the nodes.

    Knows nothing of keys: the CLI feeds it segments it sealed itself, the gateway feeds it
    segments a browser sealed.
    """

    def __init__(
        self, net: Network, si: bytes, size: int, k: int = 3, n: int = 10, happy: int | None = None,
        segment_size: int = SEGMENT_SIZE,
    ) -> None:
        self.happy = check_params(k, n, happy)
        self.net, self.si, self.size, self.k, self.n, self.segment_size = net, si, size, k, n, segment_size
        order = net.storage_nodes_for(si)
        self.codec = Codec(k, n)
        self.nseg = segment_count(size, segment_size)
        self.last_plain = size - segment_size * (self.nseg - 1)
        self.bsize = self.codec.block_size(segment_size + 16)
        self.lbsize = self.codec.block_size(self.last_plain + 16)
        if self.nseg == 1:  # a one-block share has one block size (storage protocol v2)
            self.bsize = self.lbsize
        self.senders = self._place(order)
        self.seg_leaves: list[bytes] = []
        self.batch_segs = max(1, BATCH_BYTES // self.bsize)
        self.pending: dict[int, list[tuple[bytes, bytes]]] = {s: [] for s in self.senders}
        self.batch_start = 0
        self.closed = False
        for snd in self.senders.values():
            snd.start()

    def _place(self, order: list[NodeInfo]) -> dict[int, _Sender]:
        """Share i to the i-th node in rendezvous order (all at once); a refusal falls to the next node."""
        problems: list[str] = []
        tr = self.net.transport

        def begin(shnum: int, node: NodeInfo) -> str:
            req = UploadRequest(self.si, shnum, self.nseg, self.bsize, self.lbsize)
            return admitted(self.net.tickets, node, self.si, lambda t: tr.begin(node, req, ticket=t))

        placed = place_shares(order, self.n, begin, problems)
        senders = {shnum: _Sender(shnum, node, tr, uid) for shnum, (node, uid) in placed.items()}
        distinct = {s.node.node_id for s in senders.values()}
        if len(distinct) < self.happy or len(senders) < self.n:
            _abort_all(senders.values())
            refused_admission(problems, len(distinct), self.happy)
            detail = "; ".join(problems[-5:])
            raise UnavailableError(
                f"could place shares on only {len(distinct)} distinct nodes, {self.happy} needed"
                + (f" ({detail})" if detail else "")
            )
        return senders

    def ciphertext_len(self, index: int) -> int:
        return (self.segment_size if index < self.nseg - 1 else self.last_plain) + 16

    def add_segment(self, ct: bytes | memoryview) -> None:
        """Add the next sealed segment (exactly ``ciphertext_len(index)`` bytes)."""
        i = len(self.seg_leaves)
        if i >= self.nseg:
            raise UsageError("more segments than the file size allows")
        if len(ct) != self.ciphertext_len(i):
            raise UsageError(f"segment {i} has {len(ct)} bytes, expected {self.ciphertext_len(i)}")
        seg_leaf = SEGMENT_TREE.leaf(ct)
        self.seg_leaves.append(seg_leaf)
        blocks = self.codec.encode(ct)
        for shnum in self.senders:
            self.pending[shnum].append((seg_leaf, blocks[shnum]))
        if len(self.pending[0]) >= self.batch_segs or i == self.nseg - 1:
            live = {s.node.node_id for s in self.senders.values() if s.error is None}
            if len(live) < self.happy:
                raise _too_few(self.senders, self.happy)
            for shnum, snd in self.senders.items():
                snd.q.put((self.batch_start, self.pending[shnum]))
                self.pending[shnum] = []
            self.batch_start = i + 1

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        for snd in self.senders.values():
            snd.q.put(None)
        _abort_all(self.senders.values())

    def finish(self, meta: bytes, payout: bytes | None = None, delete: bytes | None = None) -> tuple[Manifest, list[str]]:
        """Commit every share, then publish the manifest; returns it and any warnings."""
        if len(self.seg_leaves) != self.nseg:
            raise UsageError(f"upload incomplete: {len(self.seg_leaves)} of {self.nseg} segments")
        self.closed = True
        senders = self.senders
        for snd in senders.values():
            snd.q.put(None)
        for snd in senders.values():
            snd.join()
        segroot = Levels.build(SEGMENT_TREE, self.seg_leaves).root()
        roots = {shnum: Levels.build(BLOCK_TREE, snd.leaves).root() for shnum, snd in senders.items()}
        warnings: list[str] = []
        man = Manifest(
            si=self.si, k=self.k, n=self.n, happy=self.happy, segsize=self.segment_size, size=self.size,
            bsize=self.bsize, lbsize=self.lbsize, roots=tuple(roots[i] for i in range(self.n)), segroot=segroot,
            meta=meta, payout=payout, codec=CODEC, delete=delete,
        )
        mbytes = man.to_bytes()

        def commit(snd: _Sender) -> str | None:
            """Commit one share with the manifest; a warning, or None when it is stored."""
            if snd.error is not None:
                return f"share {snd.shnum} on {snd.node.label} failed: {snd.error}"
            try:
                # the node builds the trees and fsyncs the whole share before it answers
                got = snd.transport.commit(snd.node, snd.uid, Commit(roots[snd.shnum], segroot, mbytes),
                                           timeout=bulk_timeout(man.share_len()))  # fmt: skip
            except VeilError as e:
                snd.error = e
                return f"share {snd.shnum} on {snd.node.label} failed at commit: {e}"
            if got != roots[snd.shnum]:
                snd.error = UnavailableError("conflict")
                return f"share {snd.shnum} on {snd.node.label}: node kept a different share"
            return None

        with ThreadPoolExecutor(max_workers=len(senders), thread_name_prefix="commit") as ex:
            warnings += [w for w in ex.map(commit, senders.values()) if w is not None]
        holders = {snd.node.node_id for snd in senders.values() if snd.error is None}
        if len(holders) < self.happy:
            raise _too_few(senders, self.happy)
        return man, warnings

    @property
    def placement(self) -> dict[int, NodeInfo]:
        return {shnum: snd.node for shnum, snd in self.senders.items()}


def upload(
    net: Network,
    src: BinaryIO,
    size: int,
    name: str,
    mime: str | None = None,
    k: int = 3,
    n: int = 10,
    happy: int | None = None,
    segment_size: int = SEGMENT_SIZE,
    payout: bytes | None = None,
    progress: Progress = nothing,
    mtime: int | None = None,
    deletion: bytes | None = None,
) -> UploadResult:
    """Encrypt ``size`` bytes from ``src`` under a fresh key and upload them; returns the read cap.

    ``deletion``: the uploader's deletion secret; the manifest then commits to this file's
    deletion key (format/deletion.py), so `veil rm` can later remove its shares.

    The key is always new: segment nonces are the segment index, so a key used twice would
    reuse AES-GCM nonces. No caller can pass one in."""
    key = caps.new_file_key()
    dcommit = deletion_commitment(deletion_key(deletion, caps.storage_index(key))) if deletion else None
    meta: dict[str, Any] = {
        "name": name, "type": mime or mimetypes.guess_type(name)[0] or "application/octet-stream", "size": size,
    }
    if mtime is not None:
        meta["mtime"] = mtime
    if size <= SMALL_FILE and fits_oneshot(size, k, n, segment_size):
        data = bytearray(size)
        _read_exact(src, memoryview(data), 0)
        small = upload_small(net, key, bytes(data), seal_metadata(key, meta), k, n, happy, segment_size, payout,
                             dcommit)
        progress(size)
        return UploadResult(caps.ReadCap(key, small.manifest.hash()), small.manifest, small.placement,
                            small.warnings)  # fmt: skip
    up = ShareUploader(net, caps.storage_index(key), size, k, n, happy, segment_size)
    cipher = SegmentCipher(key, up.nseg)
    pbuf = bytearray(segment_size)
    cbuf = bytearray(segment_size + 16)
    try:
        for i in range(up.nseg):
            plen = up.ciphertext_len(i) - 16
            _read_exact(src, memoryview(pbuf)[:plen], i * segment_size)
            clen = cipher.seal_into(i, memoryview(pbuf)[:plen], memoryview(cbuf)[: plen + 16])
            up.add_segment(memoryview(cbuf)[:clen])
            progress(plen)
    except BaseException:
        up.abort()
        raise
    man, warnings = up.finish(seal_metadata(key, meta), payout, dcommit)
    return UploadResult(caps.ReadCap(key, man.hash()), man, up.placement, warnings)


def _too_few(senders: dict[int, _Sender], happy: int) -> UnavailableError:
    errs = [f"{s.node.label}: {s.error}" for s in senders.values() if s.error is not None]
    live = {s.node.node_id for s in senders.values() if s.error is None}
    return UnavailableError(
        f"only {len(live)} distinct nodes still accept shares, {happy} needed: " + "; ".join(errs[-3:])
    )


def _abort_all(senders: Iterable[_Sender]) -> None:
    for s in senders:
        s.transport.abort(s.node, s.uid)


def _read_exact(src: BinaryIO, mv: memoryview, offset: int) -> None:
    got = 0
    while got < len(mv):
        r = src.readinto(mv[got:])  # type: ignore[attr-defined]
        if not r:
            raise UsageError(f"the file shrank while it was being uploaded (short read at byte {offset + got})")
        got += r


def upload_path(net: Network, path: str, progress: Progress = nothing, **kw: object) -> UploadResult:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
        st = os.fstat(f.fileno())
        return upload(net, f, st.st_size, os.path.basename(path), progress=progress, mtime=int(st.st_mtime), **kw)  # type: ignore[arg-type]

