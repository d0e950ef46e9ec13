"""Download: fetch blocks from k+1 nodes in parallel, verify each on arrival, decode, decrypt.

Each batch of segments is asked of k+1 share sources; the first k verified answers are
used and the slow tail is dropped (a worker skips batches already complete). A source that
fails or returns blocks that do not match the manifest's share root is named, dropped, and
replaced by another holder. Memory stays bounded by the window of batches in flight.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from veil.erasure import Codec
from veil.errors import IntegrityError, PaymentRequiredError, UnavailableError, UsageError, VeilError
from veil.format.caps import ReadCap, VerifyCap
from veil.format.manifest import Manifest
from veil.format.merkle import verify_range
from veil.format.segments import SegmentCipher, open_metadata
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.net.client import PeerClient
from veil.protocol.storage import parse_range_head

from .locate import Located, locate
from .network import Network, NodeInfo
from .payer import Payer, Paying
from .progress import Progress, nothing

BATCH_BYTES = 2 << 20
WINDOW = 3
HEAD_ROOM = 32 * 1024


@dataclass
class Batch:
    index: int
    start: int
    count: int
    assigned: set[int] = field(default_factory=set)  # source ids
    results: dict[int, tuple[list[memoryview], list[bytes]]] = field(default_factory=dict)  # shnum -> (blocks, sproof)
    bufs: list[tuple[Source, bytearray]] = field(default_factory=list)
    done: bool = False
    plain: list[bytes] | None = None


class Source(threading.Thread):
    """One (share, node) pair and the worker thread fetching its blocks."""

    def __init__(self, sid: int, shnum: int, node: NodeInfo, client: PeerClient, man: Manifest, si: bytes,
                 results: queue.Queue[tuple[Source, Batch, Any]], payer: Paying | None = None) -> None:
        super().__init__(name=f"fetch-{shnum}", daemon=True)
        self.sid, self.shnum, self.node, self.client, self.man, self.si = sid, shnum, node, client, man, si
        self.payer = payer
        self.tasks: queue.Queue[Batch | None] = queue.Queue()
        self.results = results
        self.dead: str | None = None
        self.busy = False
        self.pool: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            b = self.tasks.get()
            if b is None:
                return
            if b.done or self.dead:
                continue
            self.busy = True
            try:
                self.results.put((self, b, self.fetch(b)))
            except VeilError as e:
                self.results.put((self, b, e))
            finally:
                self.busy = False

    def fetch(self, b: Batch) -> tuple[list[memoryview], list[bytes], bytearray]:
        man = self.man
        want = sum(man.block_len(i) for i in range(b.start, b.start + b.count))
        try:
            buf = self.pool.get_nowait()
            if len(buf) < want + HEAD_ROOM:
                buf = bytearray(want + HEAD_ROOM)
        except queue.Empty:
            buf = bytearray(want + HEAD_ROOM)
        mv = memoryview(buf)
        path = f"/v1/shares/{self.si.hex()}/{self.shnum}?start={b.start}&count={b.count}"
        if self.payer is None:
            self.client.request("GET", path, into=mv)
        else:  # a node that charges is paid for exactly these blocks before it sends them
            self.payer.fetch(self.client, self.node, path, want, man.payout, mv)
        head = parse_range_head(mv)
        if head.start != b.start or head.count != b.count:
            raise IntegrityError("node answered a different block range than asked")
        off = head.size
        blocks: list[memoryview] = []
        for i in range(b.start, b.start + b.count):
            n = man.block_len(i)
            blocks.append(mv[off : off + n])
            off += n
        leaves = [BLOCK_TREE.leaf(x) for x in blocks]
        try:
            verify_range(BLOCK_TREE, man.roots[self.shnum], man.nseg, b.start, leaves, head.bproof)
        except IntegrityError as e:
            raise IntegrityError(f"{self.node.label} returned corrupt data for share {self.shnum}") from e
        return blocks, head.sproof, buf


@dataclass
class DownloadResult:
    meta: dict[str, Any]
    manifest: Manifest
    written: int
    warnings: list[str]


def open_file(net: Network, cap: ReadCap) -> tuple[Located, dict[str, Any]]:
    """Locate a file and decrypt its metadata (no content is fetched)."""
    loc = locate(net, cap.storage_index, cap.manifest_hash)
    return loc, open_metadata(cap.file_key, loc.manifest.meta)


def download(
    net: Network,
    cap: ReadCap,
    out: BinaryIO,
    byte_range: tuple[int, int] | None = None,
    progress: Progress = nothing,
    on_meta: Callable[[dict[str, Any], int], None] | None = None,
    payer: Payer | None = None,
) -> DownloadResult:
    """Write the file (or bytes [start, end) of it) to ``out``."""
    loc, meta = open_file(net, cap)
    man = loc.manifest
    start, end = 0, man.size
    if byte_range is not None:
        start, end = byte_range[0], min(byte_range[1], man.size)
        if start < 0 or start > end:
            raise UsageError(f"range {byte_range[0]}-{byte_range[1]} is outside the file (size {man.size})")
    if on_meta is not None:
        on_meta(meta, end - start)
    warnings = [f"unreachable: {u}" for u in loc.unreachable]
    if end == start and man.size > 0:
        return DownloadResult(meta, man, 0, warnings)
    s0 = start // man.segsize
    s1 = max(s0, (end - 1) // man.segsize) if end > start else s0
    cipher = SegmentCipher(cap.file_key, man.nseg)
    pbuf = bytearray(man.segsize)
    written = 0
    for seg_index, ct in Fetcher(net, cap.storage_index, loc, warnings, payer).segments(s0, s1):
        n = cipher.open_into(seg_index, ct, memoryview(pbuf)[: len(ct) - 16])
        seg_off = seg_index * man.segsize
        lo = max(start, seg_off) - seg_off
        hi = min(end, seg_off + n) - seg_off
        if hi > lo:
            out.write(memoryview(pbuf)[lo:hi])
            written += hi - lo
            progress(hi - lo)
    return DownloadResult(meta, man, written, warnings)


def fetch_ciphertext(net: Network, vcap: VerifyCap, s0: int = 0, s1: int | None = None,
                     warnings: list[str] | None = None,
                     payer: Payer | None = None) -> tuple[Located, Iterator[tuple[int, bytes]]]:
    """Sealed segments s0..s1 of a file, verified against its manifest, with only the verify cap.

    For the gateway (the browser decrypts) and the repairer (it re-encodes, never decrypts);
    ``payer`` pays nodes that charge for downloads.
    """
    loc = locate(net, vcap.storage_index, vcap.manifest_hash)
    last = loc.manifest.nseg - 1 if s1 is None else min(s1, loc.manifest.nseg - 1)
    if not 0 <= s0 <= last:
        raise UsageError("segment range outside the file")
    fetcher = Fetcher(net, vcap.storage_index, loc, warnings if warnings is not None else [], payer)
    return loc, fetcher.segments(s0, last)


class Fetcher:
    """Fetches, verifies and decodes the sealed segments of one located file."""

    def __init__(self, net: Network, si: bytes, loc: Located, warnings: list[str], payer: Paying | None = None) -> None:
        self.net, self.si, self.loc, self.warnings = net, si, loc, warnings
        self.man = loc.manifest
        self.codec = Codec(self.man.k, self.man.n, self.man.codec)
        self.results: queue.Queue[tuple[Source, Batch, Any]] = queue.Queue()
        self.sources: list[Source] = []
        self.batches: list[Batch] = []
        self.dispatched = 0
        self.refused_payment = False  # a node answered 402: it charges and was not (or could not be) paid
        # One source per (share, node); data shares first (systematic code: no decoding math),
        # and each share's first holder before any second holder.
        seen_nodes: set[bytes] = set()
        first: list[tuple[int, NodeInfo]] = []
        rest: list[tuple[int, NodeInfo]] = []
        for shnum in sorted(loc.holders):
            for j, node in enumerate(loc.holders[shnum]):
                (first if j == 0 and node.node_id not in seen_nodes else rest).append((shnum, node))
                seen_nodes.add(node.node_id)
        for shnum, node in first + rest:
            s = Source(len(self.sources), shnum, node, net.client(node), self.man, si, self.results, payer)
            self.sources.append(s)

    def _alive(self) -> list[Source]:
        return [s for s in self.sources if s.dead is None]

    def _too_few(self) -> UnavailableError:
        shares = {s.shnum for s in self._alive()}
        dead = [f"{s.node.label}: {s.dead}" for s in self.sources if s.dead]
        found = len({s.shnum for s in self.sources})
        msg = (
            f"found {len(shares)} of the {self.man.k} shares needed "
            f"({found} located on {self.loc.asked} nodes asked"
            + (f", {len(self.loc.unreachable)} unreachable" if self.loc.unreachable else "")
            + ")"
        )
        if dead:
            msg += "; failed: " + "; ".join(dead[:4])
        return UnavailableError(msg)

    def _assign(self, b: Batch) -> None:
        """Give ``b`` to sources until k+1 distinct shares (or all there are) are asked."""
        asked_shares = {self.sources[i].shnum for i in b.assigned if self.sources[i].dead is None}
        for s in self._alive():
            if len(asked_shares) >= self.man.k + 1:
                break
            if s.sid in b.assigned or s.shnum in asked_shares:
                continue
            b.assigned.add(s.sid)
            asked_shares.add(s.shnum)
            s.tasks.put(b)
        if len(asked_shares) < self.man.k:
            raise self._too_few()

    def segments(self, s0: int, s1: int) -> Iterator[tuple[int, bytes]]:
        """Verified sealed segments s0..s1 (inclusive), in order."""
        man = self.man
        if len({s.shnum for s in self.sources}) < man.k:
            raise self._too_few()
        per = max(1, BATCH_BYTES // man.bsize)
        batches = self.batches = [Batch(i, st, min(per, s1 + 1 - st)) for i, st in enumerate(range(s0, s1 + 1, per))]
        for s in self.sources:
            s.start()
        nxt = 0  # next batch to hand out
        try:
            while nxt < len(batches):
                while self.dispatched < len(batches) and self.dispatched < nxt + WINDOW:
                    self._assign(batches[self.dispatched])
                    self.dispatched += 1
                b = batches[nxt]
                while not b.done:
                    self._take_result()
                assert b.plain is not None
                yield from zip(range(b.start, b.start + b.count), b.plain, strict=True)
                b.plain = None
                nxt += 1
            self._collect_stragglers()
        finally:
            for s in self.sources:
                s.tasks.put(None)

    def _collect_stragglers(self, grace: float = 2.0) -> None:
        """Let the requests still in flight finish (briefly), so a bad node is named even when
        the good ones were faster; their data is no longer needed."""
        deadline = time.monotonic() + grace
        while True:
            try:
                item = self.results.get(timeout=max(0.0, deadline - time.monotonic()) if self._busy() else 0)
            except queue.Empty:
                return
            self._take_result(item)

    def _busy(self) -> bool:
        return any(s.busy for s in self.sources)

    def _take_result(self, item: tuple[Source, Batch, Any] | None = None) -> None:
        src, b, res = item if item is not None else self.results.get()
        if isinstance(res, VeilError):
            if isinstance(res, PaymentRequiredError):
                self.refused_payment = True
            if src.dead is None:
                src.dead = str(res)
                self.warnings.append(f"dropped {src.node.label} (share {src.shnum}): {res}")
            for other in self._pending_with(src):
                self._assign(other)
            return
        blocks, sproof, buf = res
        if b.done or src.dead:
            src.pool.put(buf)
            return
        b.results[src.shnum] = (blocks, sproof)
        b.bufs.append((src, buf))
        if len(b.results) >= self.man.k:
            self._decode(b)

    def _pending_with(self, src: Source) -> list[Batch]:
        """Dispatched batches, not yet complete, that counted on ``src``."""
        return [b for b in self.batches[: self.dispatched] if src.sid in b.assigned and not b.done]

    def _decode(self, b: Batch) -> None:
        man = self.man
        plain: list[bytes] = []
        for j, seg_index in enumerate(range(b.start, b.start + b.count)):
            ct = self.codec.decode({shnum: blocks[j] for shnum, (blocks, _) in b.results.items()})
            if len(ct) != man.ciphertext_len(seg_index):
                raise IntegrityError("decoded segment has the wrong length")
            plain.append(ct)
        leaves = [SEGMENT_TREE.leaf(ct) for ct in plain]
        for _, sproof in b.results.values():
            try:
                verify_range(SEGMENT_TREE, man.segroot, man.nseg, b.start, leaves, sproof)
                break
            except IntegrityError:
                continue
        else:
            raise IntegrityError("decoded segments do not match the manifest's segment tree")
        b.plain = plain
        b.done = True
        b.results.clear()
        for src, buf in b.bufs:
            src.pool.put(buf)
        b.bufs.clear()
