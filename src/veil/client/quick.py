"""The quick path for small files: manifest and blocks in one exchange, no locate.

Rendezvous order predicts where share i lives (the i-th candidate), so a downloader asks the
first ``QUICK_ASK`` predicted nodes (k+1 for the default 3-of-10) in parallel for block 0 of
their share with the manifest in the same reply (``range_path(..., manifest=True)``). The first
manifest that matches the cap's hash is believed, every block is verified against it, and a file
of one segment is decoded from any k of them. If too few answer within a lag margin, the next
predicted nodes are asked too. Whatever goes wrong (a node moved, charges, drips, or the file has
more than one segment) the caller falls back to ``locate`` (which asks every candidate and the
DHT); nothing here is trusted without verification, so the fallback is only slower, never wrong.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass

from veil.erasure import Codec
from veil.errors import IntegrityError, VeilError
from veil.format.manifest import MAX_MANIFEST, Manifest, parse_manifest
from veil.format.merkle import verify_range
from veil.format.share import SEGMENT_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import MAX_CONTROL, parse_range_head

from .network import Network
from .ranges import verify_blocks
from .workers import POOL

QUICK_ASK = 4
QUICK_TIMEOUT = 3.0  # the whole quick path; then locate takes over
QUICK_MAX_BLOCK = (1 << 20) + 64  # one block of a default 1 MiB segment at k = 1
LAG_MIN = 0.2


@dataclass
class Quick:
    manifest: Manifest
    segments: list[bytes] | None  # the sealed segments, when the whole file came in this exchange


def quick_fetch(net: Network, si: bytes, mhash: bytes, warnings: list[str], order: list[NodeInfo],
                timeout: float = QUICK_TIMEOUT) -> Quick | None:  # fmt: skip
    """The manifest (and, for a one-segment file, its sealed segment) from the predicted nodes
    (``order``: the rendezvous candidates); None if they do not deliver a verified manifest in time."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    replies: queue.SimpleQueue[tuple[int, NodeInfo, bytes | None, str]] = queue.SimpleQueue()

    answered_by: set[int] = set()

    def ask(shnum: int, node: NodeInfo) -> None:
        try:
            ans = net.transport.read_range(node, si, mhash, shnum, 0, 1, timeout=timeout, manifest=True,
                                           max_size=9 + MAX_CONTROL + MAX_MANIFEST + QUICK_MAX_BLOCK)  # fmt: skip
            if ans.status != 200:
                replies.put((shnum, node, None, f"{node.label}: charges for downloads"))
            else:
                replies.put((shnum, node, bytes(ans.data), ""))
        except VeilError as e:
            replies.put((shnum, node, None, str(e)))

    asked = 0

    def ask_more(upto: int) -> None:
        nonlocal asked
        while asked < min(upto, len(order)):
            POOL.submit(ask, asked, order[asked])
            asked += 1

    ask_more(QUICK_ASK)
    man: Manifest | None = None
    raw: dict[int, tuple[NodeInfo, bytes]] = {}
    good: dict[int, tuple[memoryview, list[bytes]]] = {}
    answered = 0
    margin: float | None = None  # known once the first answer came: how long a laggard may lag
    progress_at = t0
    while True:
        if man is not None and (man.nseg > 1 or len(good) >= man.k):
            break
        limit = min(len(order), man.n if man is not None else len(order))
        now = time.monotonic()
        if now >= deadline:
            break
        if answered >= asked:  # everyone asked has answered, and it is not enough: ask the next
            if asked >= limit:
                break
            ask_more(asked + (man.k - len(good) if man is not None else 1))
            continue
        wake = deadline if margin is None else min(deadline, progress_at + margin)
        try:
            shnum, node, data, err = replies.get(timeout=max(0.0, wake - now))
        except queue.Empty:
            if margin is not None and asked < limit:
                ask_more(asked + 1)  # hedge the laggards with the next predicted node
                progress_at = time.monotonic()
                continue
            if margin is not None:  # everyone predicted was asked; only laggards are left
                break
            continue
        answered += 1
        answered_by.add(shnum)
        progress_at = time.monotonic()
        if margin is None:
            margin = max(LAG_MIN, 2 * (progress_at - t0))
        if data is None:
            warnings.append(f"quick path: {err}")
            continue
        raw[shnum] = (node, data)
        if man is None:
            try:
                head = parse_range_head(data)
                if head.manifest is not None:
                    man = parse_manifest(head.manifest, mhash, si)
            except IntegrityError as e:
                warnings.append(f"quick path: {node.label}: {e}")
                del raw[shnum]
                continue
        if man is not None:
            for sh, (nd, d) in list(raw.items()):
                del raw[sh]
                if sh >= man.n:
                    continue
                try:
                    got = verify_blocks(man, sh, 0, 1, memoryview(d), nd.label)
                    good[sh] = (got.blocks[0], got.head.sproof)
                except IntegrityError as e:
                    warnings.append(f"quick path: {e}")
    waited = time.monotonic() - t0
    for i in range(asked if waited >= (margin or LAG_MIN) else 0):  # only laggards, not the merely late
        if i not in answered_by:
            warnings.append(f"quick path: {order[i].label}: no answer within {waited:.1f} s (not waited for)")
    if man is None:
        return None
    if man.nseg > 1 or len(good) < man.k:
        return Quick(man, None)
    codec = Codec(man.k, man.n, man.codec)
    ct = codec.decode({sh: blk for sh, (blk, _) in sorted(good.items())[: man.k]})
    if len(ct) != man.ciphertext_len(0):
        return Quick(man, None)
    leaf = SEGMENT_TREE.leaf(ct)
    for _, sproof in good.values():
        try:
            verify_range(SEGMENT_TREE, man.segroot, 1, 0, [leaf], sproof)
            return Quick(man, [ct])
        except IntegrityError:
            continue
    return Quick(man, None)
