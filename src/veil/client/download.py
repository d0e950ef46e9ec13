"""Download: fetch blocks from k(+1) nodes in parallel, verify each on arrival, decode, decrypt.

Each batch of segments is asked of k+1 share sources (k when a payer pays charging nodes:
they are paid before they send, so a spare source would be paid for bytes never used); the
first k verified answers are used and the slow tail is dropped (a worker skips batches
already complete). Sources are raced and hedged: a source that falls behind the others of a
batch by a margin (``HEDGE_MIN``, or twice the time the first answer took) is marked slow,
loses its batch to the next source, and is asked last from then on; every read has a deadline
for the whole exchange (protocol/transport.py), after which the source is dropped. A source
that fails or returns blocks that do not match the manifest's share root is named, dropped,
and replaced by another holder. Memory stays bounded by the window of batches in flight.

A file of one segment first tries the quick path (client/quick.py): manifest and blocks in
one exchange with the nodes rendezvous order predicts, without locating.
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
from veil.format.share import SEGMENT_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import range_reply_max

from .locate import Located, locate
from .network import Network
from .payer import Payer, Paying
from .progress import Progress, nothing
from .quick import quick_fetch
from .ranges import fetch_range, range_bytes, verify_blocks

BATCH_BYTES = 2 << 20
WINDOW = 3
HEDGE_MIN = 0.3  # seconds a source may lag behind the first answer of its batch before it is hedged
TICK = 0.05


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
    dropped: set[int] = field(default_factory=set)  # source ids it was taken from (hedged)
    sent_at: float = 0.0
    first_at: float | None = None


class Source(threading.Thread):
    """One (share, node) pair and the worker thread fetching its blocks."""

    def __init__(self, sid: int, shnum: int, node: NodeInfo, fetcher: Fetcher) -> None:
        super().__init__(name=f"fetch-{shnum}", daemon=True)
        self.sid, self.shnum, self.node, self.f = sid, shnum, node, fetcher
        self.tasks: queue.Queue[Batch | None] = queue.Queue()
        self.dead: str | None = None
        self.slow = False
        self.busy = False
        self.current: Batch | None = None
        self.pool: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            b = self.tasks.get()
            if b is None:
                return
            if b.done or self.dead or self.sid in b.dropped:
                continue
            self.busy, self.current = True, b
            try:
                self.f.results.put((self, b, self.fetch(b)))
            except VeilError as e:
                self.f.results.put((self, b, e))
            finally:
                self.busy, self.current = False, None

    def fetch(self, b: Batch) -> tuple[list[memoryview], list[bytes], bytearray]:
        f = self.f
        man = f.man
        want = range_reply_max(b.count, 0) + range_bytes(man, b.start, b.count)
        try:
            buf = self.pool.get_nowait()
            if len(buf) < want:
                buf = bytearray(want)
        except queue.Empty:
            buf = bytearray(want)
        with f.lock:
            f.requested_bytes += range_bytes(man, b.start, b.count)
        ans = fetch_range(f.net.transport, self.node, man, f.mhash, self.shnum, b.start, b.count,
                          memoryview(buf), f.payer)  # fmt: skip
        got = verify_blocks(man, self.shnum, b.start, b.count, memoryview(buf)[: ans.length], self.node.label)
        return got.blocks, got.head.sproof, buf


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
    payer: Paying | None = None,
) -> DownloadResult:
    """Write the file (or bytes [start, end) of it) to ``out``."""
    warnings: list[str] = []
    order = net.storage_nodes_for(cap.storage_index)  # one candidate lookup for both paths
    quick = quick_fetch(net, cap.storage_index, cap.manifest_hash, warnings, order)
    if quick is not None and quick.segments is not None:
        man = quick.manifest
        loc = None
    else:
        warnings.clear()  # the full path names every node it could not use again
        loc = locate(net, cap.storage_index, cap.manifest_hash, order=order)
        man = loc.manifest
        warnings += [f"unreachable: {u}" for u in loc.unreachable]
    meta = open_metadata(cap.file_key, man.meta)
    start, end = 0, man.size
    if byte_range is not None:
        start, end = byte_range[0], min(byte_range[1], man.size)
        if start < 0 or start > end:
            raise UsageError(f"range {byte_range[0]}-{byte_range[1]} is outside the file (size {man.size})")
    if on_meta is not None:
        on_meta(meta, end - start)
    if end == start and man.size > 0:
        return DownloadResult(meta, man, 0, warnings)
    s0 = start // man.segsize
    s1 = max(s0, (end - 1) // man.segsize) if end > start else s0
    if isinstance(payer, Payer):  # channels lock what this download will spend, not a flat deposit
        payer.plan((s1 - s0 + 1) * (man.segsize + 16), man.k)  # (an upper bound: the last segment is shorter)
    cipher = SegmentCipher(cap.file_key, man.nseg)
    pbuf = bytearray(man.segsize)
    written = 0
    if loc is None:
        assert quick is not None and quick.segments is not None
        segs: Iterator[tuple[int, bytes]] = iter(enumerate(quick.segments))
    else:
        segs = Fetcher(net, cap.storage_index, loc, warnings, payer).segments(s0, s1)
    for seg_index, ct in segs:
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
                     payer: Paying | None = None) -> tuple[Located, Iterator[tuple[int, bytes]]]:
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
        self.net, self.si, self.loc, self.warnings, self.payer = net, si, loc, warnings, payer
        self.man = loc.manifest
        self.mhash = self.man.hash()
        self.codec = Codec(self.man.k, self.man.n, self.man.codec)
        self.results: queue.Queue[tuple[Source, Batch, Any]] = queue.Queue()
        self.sources: list[Source] = []
        self.batches: list[Batch] = []
        self.dispatched = 0
        self.lock = threading.Lock()
        self.requested_bytes = 0  # block bytes asked for (what a charging node is paid for)
        self.used_bytes = 0  # block bytes decoded (k shares per batch)
        self.hedged = 0
        # k+1 sources per batch race for it; with a payer only k (hedging on lag adds more).
        self.spread = self.man.k + (0 if payer is not None else 1)
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
            self.sources.append(Source(len(self.sources), shnum, node, self))

    def _alive(self) -> list[Source]:
        alive = [s for s in self.sources if s.dead is None]
        return [s for s in alive if not s.slow] + [s for s in alive if s.slow]

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
        """Give ``b`` to sources until ``spread`` distinct shares that are neither dead nor
        lagging are asked (or all there are); lagging sources are asked last."""
        active = [self.sources[i] for i in b.assigned if i not in b.dropped and self.sources[i].dead is None]
        live = {s.shnum for s in active if not s.slow} | set(b.results)
        asked = {s.shnum for s in active} | set(b.results)
        goal = min(self.spread, self.man.n)
        for s in self._alive():
            if len(live) >= goal:
                break
            if s.shnum in asked:
                continue
            b.assigned.add(s.sid)
            b.dropped.discard(s.sid)
            asked.add(s.shnum)
            if not s.slow:
                live.add(s.shnum)
            s.tasks.put(b)
        if len(asked) < self.man.k:
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
                    b = batches[self.dispatched]
                    b.sent_at = time.monotonic()
                    self._assign(b)
                    self.dispatched += 1
                b = batches[nxt]
                while not b.done:
                    try:
                        self._take_result(self.results.get(timeout=TICK))
                    except queue.Empty:
                        self._hedge()
                assert b.plain is not None
                yield from zip(range(b.start, b.start + b.count), b.plain, strict=True)
                b.plain = None
                nxt += 1
            self._collect_stragglers()
        finally:
            self._stop_sources()

    def _stop_sources(self, grace: float = 2.0) -> None:
        """Tell every source to stop and give the busy ones a moment to finish, so none is still
        inside the payer (its channel book is closed right after a download) or decoding when
        the caller moves on. A source stuck on a slow node is left to its own deadline."""
        for s in self.sources:
            s.tasks.put(None)
        end = time.monotonic() + grace
        for s in self.sources:
            if s.is_alive() and not s.slow:
                s.join(max(0.0, end - time.monotonic()))

    def _hedge(self) -> None:
        """A batch some of whose sources answered while others lag by the margin: the laggards
        are marked slow and the batch goes to the next sources."""
        now = time.monotonic()
        for b in self.batches[: self.dispatched]:
            if b.done or b.first_at is None:
                continue
            margin = max(HEDGE_MIN, 2 * (b.first_at - b.sent_at))
            if now - b.first_at < margin:
                continue
            lagging = [self.sources[i] for i in b.assigned
                       if self.sources[i].dead is None and not self.sources[i].slow
                       and self.sources[i].shnum not in b.results]  # fmt: skip
            if not lagging:
                continue
            pending = self._pending_with_any(lagging)
            for s in lagging:
                s.slow = True
                self.warnings.append(f"hedged {s.node.label} (share {s.shnum}): more than {margin:.1f} s behind")
                for other in pending:
                    if other is not s.current and s.sid in other.assigned:
                        other.dropped.add(s.sid)  # not started: it goes to a faster source
            self.hedged += 1
            for other in pending:
                self._assign(other)

    def _collect_stragglers(self, grace: float = 2.0) -> None:
        """Let the requests still in flight finish (briefly), so a bad node is named even when
        the good ones were faster; their data is no longer needed. Slow sources are not waited for."""
        deadline = time.monotonic() + grace
        while True:
            busy = any(s.busy and not s.slow and s.dead is None for s in self.sources)
            try:
                item = self.results.get(timeout=max(0.0, deadline - time.monotonic()) if busy else 0)
            except queue.Empty:
                return
            self._take_result(item)

    def _take_result(self, item: tuple[Source, Batch, Any]) -> None:
        src, b, res = item
        if isinstance(res, VeilError):
            if isinstance(res, PaymentRequiredError):
                self.refused_payment = True
            if src.dead is None:
                src.dead = str(res)
                self.warnings.append(f"dropped {src.node.label} (share {src.shnum}): {res}")
            for other in self._pending_with_any([src]):
                self._assign(other)
            return
        blocks, sproof, buf = res
        if b.done or src.dead:
            src.pool.put(buf)
            return
        if b.first_at is None:
            b.first_at = time.monotonic()
        b.results[src.shnum] = (blocks, sproof)
        b.bufs.append((src, buf))
        if len(b.results) >= self.man.k:
            self._decode(b)

    def _pending_with_any(self, srcs: list[Source]) -> list[Batch]:
        """Dispatched batches, not yet complete, that counted on any of ``srcs``."""
        ids = {s.sid for s in srcs}
        return [b for b in self.batches[: self.dispatched] if ids & (b.assigned - b.dropped) and not b.done]

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
        with self.lock:
            self.used_bytes += self.man.k * range_bytes(man, b.start, b.count)
        b.plain = plain
        b.done = True
        b.results.clear()
        for src, buf in b.bufs:
            src.pool.put(buf)
        b.bufs.clear()
