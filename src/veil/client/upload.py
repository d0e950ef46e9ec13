"""Upload: encrypt, erasure-code and spread a file over storage nodes in constant memory.

Pipeline: the calling thread reads a segment into a reused buffer, seals it in place,
hashes it and erasure-codes it; one sender thread per share hashes that share's blocks
and streams them to its node in batches. Bounded queues keep memory flat whatever the file
size. Shares go to nodes in rendezvous order (protocol/placement.py); a node that refuses
or fails at the start is replaced by the next in order; the upload succeeds only if shares
land on at least ``happy`` distinct nodes.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from veil.erasure import CODEC, Codec
from veil.errors import UnavailableError, UsageError, VeilError
from veil.format import caps
from veil.format.manifest import Manifest
from veil.format.merkle import Levels
from veil.format.segments import SegmentCipher, seal_metadata, segment_count
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.net.client import PeerClient
from veil.protocol.placement import permuted
from veil.protocol.storage import UploadRequest

from .network import Network, NodeInfo
from .progress import Progress, nothing

log = logging.getLogger("veil.upload")

SEGMENT_SIZE = 1 << 20
BATCH_BYTES = 2 << 20
QUEUE_DEPTH = 2


@dataclass
class UploadResult:
    cap: caps.ReadCap
    manifest: Manifest
    placement: dict[int, NodeInfo]
    warnings: list[str] = field(default_factory=list)


class _Sender(threading.Thread):
    """Streams one share to one node; computes that share's block-tree leaves on the way."""

    def __init__(self, shnum: int, node: NodeInfo, client: PeerClient, uid: str) -> None:
        super().__init__(name=f"send-{shnum}", daemon=True)
        self.shnum, self.node, self.client, self.uid = shnum, node, client, uid
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
            try:
                self.client.request("PUT", f"/v1/uploads/{self.uid}?start={start}", b"".join(parts))
            except VeilError as e:
                self.error = e


def _begin(client: PeerClient, req: UploadRequest) -> str:
    reply = client.call("POST", "/v1/uploads", req.to_value())
    uid = reply.get("id") if isinstance(reply, dict) else None
    if not isinstance(uid, str) or not uid.isalnum() or len(uid) > 64:
        raise UnavailableError(f"{client.where}: bad reply to upload request")
    return uid


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
    file_key: bytes | None = None,
    mtime: int | None = None,
) -> UploadResult:
    if not 1 <= k <= n <= 255:
        raise UsageError(f"-k/-n must satisfy 1 <= k <= n <= 255 (got {k}-of-{n})")
    happy = min(n, max(k, happy if happy is not None else min(n, k + 4)))
    nodes = net.storage_nodes()
    if not nodes:
        raise UnavailableError("the network lists no storage nodes")
    codec = Codec(k, n)
    key = file_key or caps.new_file_key()
    si = caps.storage_index(key)
    nseg = segment_count(size, segment_size)
    last_plain = size - segment_size * (nseg - 1)
    bsize = codec.block_size(segment_size + 16)
    lbsize = codec.block_size(last_plain + 16)

    # Placement: share i to the i-th node in rendezvous order; refusals fall to the next node.
    order = [nodes[i] for i in permuted(si, [x.node_id for x in nodes])]
    senders: dict[int, _Sender] = {}
    problems: list[str] = []
    candidates = list(order)
    used: list[NodeInfo] = []
    for shnum in range(n):
        req = UploadRequest(si, shnum, nseg, bsize, lbsize)
        placed = False
        while not placed:
            if candidates:
                node = candidates.pop(0)
            elif used:
                node = min(used, key=lambda u: sum(1 for s in senders.values() if s.node is u))
            else:
                break
            try:
                uid = _begin(net.client(node), req)
            except VeilError as e:
                problems.append(f"{node.label}: {e}")
                if node in used:
                    used.remove(node)
                continue
            senders[shnum] = _Sender(shnum, node, net.client(node), uid)
            if node not in used:
                used.append(node)
            placed = True
    distinct = {s.node.node_id for s in senders.values()}
    if len(distinct) < happy or len(senders) < n:
        _abort_all(senders.values())
        detail = "; ".join(problems[-5:])
        raise UnavailableError(
            f"could place shares on only {len(distinct)} distinct nodes, {happy} needed"
            + (f" ({detail})" if detail else "")
        )
    for s in senders.values():
        s.start()

    cipher = SegmentCipher(key, nseg)
    seg_leaves: list[bytes] = []
    batch_segs = max(1, BATCH_BYTES // bsize)
    pbuf = bytearray(segment_size)
    cbuf = bytearray(segment_size + 16)
    pending: dict[int, list[tuple[bytes, bytes]]] = {s: [] for s in senders}
    batch_start = 0
    try:
        for i in range(nseg):
            plen = segment_size if i < nseg - 1 else last_plain
            _read_exact(src, memoryview(pbuf)[:plen], i * segment_size)
            clen = cipher.seal_into(i, memoryview(pbuf)[:plen], memoryview(cbuf)[: plen + 16])
            ct = memoryview(cbuf)[:clen]
            seg_leaf = SEGMENT_TREE.leaf(ct)
            seg_leaves.append(seg_leaf)
            blocks = codec.encode(ct)
            for shnum in senders:
                pending[shnum].append((seg_leaf, blocks[shnum]))
            if len(pending[0]) >= batch_segs or i == nseg - 1:
                live = [s for s in senders.values() if s.error is None]
                if len({s.node.node_id for s in live}) < happy:
                    raise _too_few(senders, happy)
                for shnum, s in senders.items():
                    s.q.put((batch_start, pending[shnum]))
                    pending[shnum] = []
                batch_start = i + 1
            progress(plen)
    except BaseException:
        for s in senders.values():
            s.q.put(None)
        _abort_all(senders.values())
        raise
    for s in senders.values():
        s.q.put(None)
    for s in senders.values():
        s.join()

    segroot = Levels.build(SEGMENT_TREE, seg_leaves).root()
    roots = {shnum: Levels.build(BLOCK_TREE, s.leaves).root() for shnum, s in senders.items()}
    warnings: list[str] = []
    for shnum, s in senders.items():
        if s.error is not None:
            warnings.append(f"share {shnum} on {s.node.label} failed: {s.error}")
            continue
        root = roots[shnum]
        try:
            got = s.client.call("POST", f"/v1/uploads/{s.uid}/commit", {"root": root, "segroot": segroot})
        except VeilError as e:
            warnings.append(f"share {shnum} on {s.node.label} failed at commit: {e}")
            s.error = e
            continue
        if not isinstance(got, dict) or got.get("root") != root:
            warnings.append(f"share {shnum} on {s.node.label}: node kept a different share")
            s.error = UnavailableError("conflict")
            continue
    ok = {s.node.node_id for s in senders.values() if s.error is None}
    if len(ok) < happy:
        raise _too_few(senders, happy)

    all_roots = tuple(roots[i] for i in range(n))
    meta = {"name": name, "type": mime or mimetypes.guess_type(name)[0] or "application/octet-stream", "size": size}
    if mtime is not None:
        meta["mtime"] = mtime
    man = Manifest(
        si=si, k=k, n=n, happy=happy, segsize=segment_size, size=size, bsize=bsize, lbsize=lbsize,
        roots=all_roots, segroot=segroot, meta=seal_metadata(key, meta), payout=payout, codec=CODEC,
    )
    mbytes = man.to_bytes()
    stored = 0
    holders = {s.node.node_id: s.node for s in senders.values() if s.error is None}
    for node in holders.values():
        try:
            net.client(node).request("PUT", f"/v1/manifests/{si.hex()}", mbytes)
            stored += 1
        except VeilError as e:
            warnings.append(f"manifest on {node.label} failed: {e}")
    if stored == 0:
        raise UnavailableError("no node accepted the manifest")
    return UploadResult(
        cap=caps.ReadCap(key, man.hash()),
        manifest=man,
        placement={shnum: s.node for shnum, s in senders.items()},
        warnings=warnings,
    )


def _too_few(senders: dict[int, _Sender], happy: int) -> UnavailableError:
    errs = [f"{s.node.label}: {s.error}" for s in senders.values() if s.error is not None]
    live = {s.node.node_id for s in senders.values() if s.error is None}
    return UnavailableError(
        f"only {len(live)} distinct nodes still accept shares, {happy} needed: " + "; ".join(errs[-3:])
    )


def _abort_all(senders: Iterable[_Sender]) -> None:
    for s in senders:
        try:
            s.client.request("DELETE", f"/v1/uploads/{s.uid}", check=False)
        except VeilError:
            pass


def _read_exact(src: BinaryIO, mv: memoryview, offset: int) -> None:
    got = 0
    while got < len(mv):
        r = src.readinto(mv[got:])  # type: ignore[attr-defined]
        if not r:
            raise UsageError(f"the file shrank while it was being uploaded (short read at byte {offset + got})")
        got += r


def upload_path(net: Network, path: str, progress: Progress = nothing, **kw: object) -> UploadResult:
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
        st = os.fstat(f.fileno())
        return upload(net, f, st.st_size, os.path.basename(path), progress=progress, mtime=int(st.st_mtime), **kw)  # type: ignore[arg-type]

