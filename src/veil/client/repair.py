"""Repair a file with only its verify cap: re-create missing and corrupt shares on new nodes.

1. Check (client/check.py): which shares are healthy on which nodes, which are missing or
   corrupt. A healthy file, or one already above the caller's threshold, is left alone.
2. Pick a node for each share to re-create, walking the network's candidates in rendezvous
   order (``next_target``): first nodes holding no share of the file and in no family that
   holds one (protocol/family.py: one share per operator or address block), then any node
   holding no share, then nodes that hold other shares but not this one (fewest first). A node that already holds a copy of that
   share number, even a corrupt one, is never chosen: its store keeps what it has.
3. Fetch any k healthy shares and decode the *sealed* segments (each verified against the
   manifest's segment tree; nothing is decrypted: the read key is never needed), re-encode
   each with the deterministic codec and stream the missing blocks to their new nodes.
4. Commit each new share under the manifest's own root, with the manifest in the same request
   (the writer and the node both check the root; a mismatch is never committed).

Corrupt copies are not deleted: nobody but the holder can prove a share is its own, so there
is no remote delete. They are ignored (check counts them out) and a fresh copy is placed on
another node. Safety: repair only ever adds shares that hash to the manifest's roots, and
nodes never overwrite a share, so running it twice, concurrently, or on a healthy file never
lowers the count of healthy shares; racing repairers that pick the same node commit the same
share (idempotent), ones that pick different nodes add an extra copy.

Imports from: veil.errors, veil.erasure, veil.format, veil.protocol, veil.client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from veil.erasure import Codec
from veil.errors import IntegrityError, UnavailableError, VeilError
from veil.format.caps import VerifyCap
from veil.format.share import SEGMENT_TREE
from veil.protocol.family import families
from veil.protocol.storage import UploadRequest

from .check import CheckReport, check
from .download import Fetcher
from .locate import Located
from .network import Network, NodeInfo
from .payer import Paying
from .share_writer import ShareWriter

log = logging.getLogger("veil.repair")


@dataclass
class RepairResult:
    before: CheckReport
    placed: dict[int, NodeInfo] = field(default_factory=dict)  # share number -> its new holder
    problems: list[str] = field(default_factory=list)

    @property
    def healthy_before(self) -> int:
        return len(self.before.healthy_shares)

    @property
    def healthy_after(self) -> int:
        return len(self.before.healthy_shares | set(self.placed))

    @property
    def needed(self) -> list[int]:
        """Share numbers the check found missing or corrupt (what repair tried to re-create)."""
        return self.before.missing


def holdings(report: CheckReport) -> dict[bytes, set[int]]:
    """node id -> share numbers it holds a copy of (healthy or corrupt)."""
    held: dict[bytes, set[int]] = {}
    for s in report.shares:
        held.setdefault(s.node.node_id, set()).add(s.shnum)
    return held


def next_target(
    candidates: list[NodeInfo], held: dict[bytes, set[int]], shnum: int, tried: set[bytes],
    used: set[str] | None = None,
) -> NodeInfo | None:
    """The node to put share ``shnum`` on: the first candidate (rendezvous order) holding no
    share of the file and in none of the ``used`` families, else the first holding no share,
    else the one holding fewest shares but not ``shnum``; None if none is left."""
    fresh = [c for c in candidates if c.node_id not in tried and c.node_id not in held]
    for c in fresh:
        if not families(c) & (used or set()):
            return c
    if fresh:
        return fresh[0]
    rest = [(len(held[c.node_id]), i, c) for i, c in enumerate(candidates)
            if c.node_id not in tried and shnum not in held.get(c.node_id, set())]
    return min(rest, key=lambda t: (t[0], t[1]))[2] if rest else None


def repair(
    net: Network,
    vcap: VerifyCap,
    full: bool = False,
    threshold: int | None = None,
    report: CheckReport | None = None,
    skip: Iterable[bytes] = (),
    on_placed: Callable[[int, NodeInfo], None] | None = None,
    payer: Paying | None = None,
) -> RepairResult:
    """Bring the file back to n healthy shares (if it has fewer than ``threshold``; default n).

    ``report`` reuses a check already made; ``skip`` names nodes never to place shares on;
    ``payer`` pays nodes that charge for the blocks checked and fetched (docs/specs/payments.md).
    Raises UnavailableError if fewer than k healthy shares are left."""
    rep = report if report is not None else check(net, vcap, full=full, payer=payer)
    man = rep.manifest
    if man.hash() != vcap.manifest_hash or man.si != vcap.storage_index:
        raise IntegrityError("the checked manifest does not match the verify cap")
    res = RepairResult(rep)
    missing = rep.missing
    limit = man.n if threshold is None else threshold
    if not missing or len(rep.healthy_shares) >= limit:
        return res
    if not rep.recoverable:
        raise UnavailableError(
            f"cannot repair: only {len(rep.healthy_shares)} healthy shares left, {man.k} needed"
        )
    si = vcap.storage_index
    candidates = net.storage_nodes_for(si)
    held = holdings(rep)
    used = {f for s in rep.shares if s.ok for f in families(s.node)}
    tried = set(skip)
    writers: dict[int, ShareWriter] = {}
    for shnum in missing:
        while (node := next_target(candidates, held, shnum, tried, used)) is not None:
            try:
                writers[shnum] = ShareWriter(net, node, UploadRequest(si, shnum, man.nseg, man.bsize, man.lbsize))
            except VeilError as e:
                tried.add(node.node_id)
                res.problems.append(f"share {shnum}: {node.label} refused: {e}")
                continue
            held.setdefault(node.node_id, set()).add(shnum)
            used |= families(node)
            break
        else:
            res.problems.append(f"share {shnum}: no node left to place it on")
    if not writers:
        return res

    healthy: dict[int, list[NodeInfo]] = {}
    for s in rep.shares:
        if s.ok:
            healthy.setdefault(s.shnum, []).append(s.node)
    codec = Codec(man.k, man.n, man.codec)
    warnings: list[str] = []
    try:
        for _, ct in Fetcher(net, si, Located(man, healthy, 0), warnings, payer).segments(0, man.nseg - 1):
            blocks = codec.encode(ct)
            leaf = SEGMENT_TREE.leaf(ct)
            for shnum, w in list(writers.items()):
                try:
                    w.add(leaf, blocks[shnum])
                except VeilError as e:
                    res.problems.append(f"share {shnum} on {w.node.label} failed: {e}")
                    w.abort()
                    del writers[shnum]
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    res.problems += warnings
    mbytes = man.to_bytes()
    for shnum, w in writers.items():
        try:
            w.commit(man.roots[shnum], man.segroot, mbytes)
        except VeilError as e:
            w.abort()
            res.problems.append(f"share {shnum} on {w.node.label} not committed: {e}")
            continue
        res.placed[shnum] = w.node
        if on_placed is not None:
            on_placed(shnum, w.node)
        log.info("repaired share %d of %s on %s", shnum, si.hex()[:16], w.node.label)
    return res
