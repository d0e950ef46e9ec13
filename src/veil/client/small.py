"""The one-shot upload of a small file: sealed and coded in memory, one request per share.

Every share travels with its manifest in one ``PUT /v1/shares/{si}/{shnum}`` (protocol/storage.py
one-shot body: head with roots and manifest, then ``nseg x (segment leaf || block)``), to all n
nodes in parallel, so the file is stored in about one round trip (the node makes the share and
its manifest durable before it answers). Placement is the streaming upload's: rendezvous order,
refusals replaced by the next node (client/place.py), at least ``happy`` distinct nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veil.erasure import CODEC, Codec
from veil.errors import UnavailableError, UsageError
from veil.format import caps
from veil.format.manifest import MAX_MANIFEST, Manifest
from veil.format.merkle import Levels
from veil.format.segments import SegmentCipher, segment_count
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import LEAF, MAX_CONTROL, MAX_ONESHOT_BODY, encode_oneshot_head
from veil.protocol.transport import bulk_timeout

from .network import Network
from .place import place_shares
from .tickets import admitted, refused_admission


@dataclass
class SmallResult:
    manifest: Manifest
    placement: dict[int, NodeInfo]
    warnings: list[str] = field(default_factory=list)


def check_params(k: int, n: int, happy: int | None) -> int:
    """The effective ``happy`` for k-of-n; UsageError for impossible parameters."""
    if not 1 <= k <= n <= 255:
        raise UsageError(f"-k/-n must satisfy 1 <= k <= n <= 255 (got {k}-of-{n})")
    return min(n, max(k, happy if happy is not None else min(n, k + 4)))


def oneshot_share_len(size: int, k: int, n: int, segment_size: int) -> int:
    """Bytes of one share's one-shot body (head bound included) for a file of ``size``."""
    codec = Codec(k, n)
    nseg = segment_count(size, segment_size)
    last = size - segment_size * (nseg - 1)
    blocks = codec.block_size(segment_size + 16) * (nseg - 1) + codec.block_size(last + 16)
    return 9 + MAX_CONTROL + MAX_MANIFEST + nseg * LEAF + blocks


def fits_oneshot(size: int, k: int, n: int, segment_size: int) -> bool:
    return oneshot_share_len(size, k, n, segment_size) <= MAX_ONESHOT_BODY


def upload_small(net: Network, key: bytes, data: bytes, meta: bytes, k: int, n: int, happy: int | None,
                 segment_size: int, payout: bytes | None, delete: bytes | None = None) -> SmallResult:  # fmt: skip
    happy = check_params(k, n, happy)
    size = len(data)
    si = caps.storage_index(key)
    codec = Codec(k, n)
    nseg = segment_count(size, segment_size)
    cipher = SegmentCipher(key, nseg)
    seg_leaves: list[bytes] = []
    shares: list[list[bytes]] = [[] for _ in range(n)]
    for i in range(nseg):
        plain = memoryview(data)[i * segment_size : min(size, (i + 1) * segment_size)]
        ct = bytearray(len(plain) + 16)
        cipher.seal_into(i, plain, ct)
        leaf = SEGMENT_TREE.leaf(ct)
        seg_leaves.append(leaf)
        for shnum, block in enumerate(codec.encode(memoryview(ct))):
            shares[shnum] += (leaf, block)
    bsize = codec.block_size(segment_size + 16)
    lbsize = codec.block_size(size - segment_size * (nseg - 1) + 16)
    if nseg == 1:  # a one-block share has one block size (storage protocol v2)
        bsize = lbsize
    roots = tuple(Levels.build(BLOCK_TREE, [BLOCK_TREE.leaf(b) for b in shares[s][1::2]]).root() for s in range(n))
    segroot = Levels.build(SEGMENT_TREE, seg_leaves).root()
    man = Manifest(si=si, k=k, n=n, happy=happy, segsize=segment_size, size=size, bsize=bsize, lbsize=lbsize,
                   roots=roots, segroot=segroot, meta=meta, payout=payout, codec=CODEC, delete=delete)  # fmt: skip
    mbytes = man.to_bytes()
    bodies = [encode_oneshot_head(nseg, bsize, lbsize, roots[s], segroot, mbytes) + b"".join(shares[s])
              for s in range(n)]  # fmt: skip
    problems: list[str] = []
    tr = net.transport

    def put(shnum: int, node: NodeInfo) -> bytes:
        got = admitted(net.tickets, node, si, lambda t: tr.put_oneshot(node, si, shnum, bodies[shnum],
                                                               timeout=bulk_timeout(len(bodies[shnum])), ticket=t))
        if got != roots[shnum]:
            raise UnavailableError(f"{node.label} kept a different share {shnum}")
        return got

    placed = place_shares(net.storage_nodes_for(si), n, put, problems)
    distinct = {node.node_id for node, _ in placed.values()}
    if len(distinct) < happy:
        refused_admission(problems, len(distinct), happy)
        detail = "; ".join(problems[-5:])
        raise UnavailableError(
            f"could place shares on only {len(distinct)} distinct nodes, {happy} needed"
            + (f" ({detail})" if detail else "")
        )
    warnings = [f"share {s} not stored" for s in range(n) if s not in placed]
    return SmallResult(man, {s: node for s, (node, _) in placed.items()}, warnings + problems)
