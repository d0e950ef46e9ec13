"""One verified block-range read: ask a node through the transport, pay it if it charges,
and check every block against the manifest's share root before anything else sees it.

Download, check, repair and audits all read blocks through ``read_blocks``, so the reply is
parsed and verified in one place. Imports from: veil.errors, veil.format, veil.protocol,
veil.client.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.errors import IntegrityError, PaymentRequiredError
from veil.format.manifest import Manifest
from veil.format.merkle import verify_range
from veil.format.share import BLOCK_TREE
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import RangeHead, parse_range_head, range_reply_max
from veil.protocol.transport import RangeAnswer, StorageTransport, bulk_timeout

from .payer import Paying


@dataclass
class Blocks:
    head: RangeHead
    blocks: list[memoryview]


def range_bytes(man: Manifest, start: int, count: int) -> int:
    return sum(man.block_len(i) for i in range(start, start + count))


def fetch_range(
    transport: StorageTransport, node: NodeInfo, man: Manifest, mhash: bytes, shnum: int, start: int, count: int,
    into: memoryview, payer: Paying | None = None, timeout: float | None = None,
) -> RangeAnswer:
    """The raw reply for blocks [start, start+count) of share ``shnum`` (paid for, if ``payer``)."""
    nbytes = range_bytes(man, start, count)
    t = bulk_timeout(nbytes) if timeout is None else timeout

    def send(headers: dict[str, str] | None) -> RangeAnswer:
        return transport.read_range(node, man.si, mhash, shnum, start, count, timeout=t, into=into, headers=headers)

    if payer is None:
        ans = send(None)
        if ans.status == 402:
            raise PaymentRequiredError(f"{node.label} charges for downloads and no wallet was given to pay it")
        return ans
    # A node that charges is paid for exactly these blocks before it sends them.
    return payer.fetch(send, node, nbytes, man.payout)


def verify_blocks(man: Manifest, shnum: int, start: int, count: int, data: memoryview, who: str) -> Blocks:
    """Parse a range reply and verify its blocks against ``man.roots[shnum]``."""
    head = parse_range_head(data)
    if head.start != start or head.count != count:
        raise IntegrityError(f"{who} answered a different block range than asked")
    off = head.size
    blocks: list[memoryview] = []
    for i in range(start, start + count):
        n = man.block_len(i)
        blocks.append(data[off : off + n])
        off += n
    if off > len(data):
        raise IntegrityError(f"{who} sent a truncated block range")
    try:
        verify_range(BLOCK_TREE, man.roots[shnum], man.nseg, start, [BLOCK_TREE.leaf(b) for b in blocks], head.bproof)
    except IntegrityError as e:
        raise IntegrityError(f"{who} returned corrupt data for share {shnum}") from e
    return Blocks(head, blocks)


def read_blocks(
    transport: StorageTransport, node: NodeInfo, man: Manifest, mhash: bytes, shnum: int, start: int, count: int,
    payer: Paying | None = None, buf: bytearray | None = None,
) -> Blocks:
    """Fetch and verify blocks [start, start+count) of share ``shnum`` from ``node``."""
    want = range_reply_max(count, 0) + range_bytes(man, start, count)
    if buf is None or len(buf) < want:
        buf = bytearray(want)
    ans = fetch_range(transport, node, man, mhash, shnum, start, count, memoryview(buf), payer)
    return verify_blocks(man, shnum, start, count, memoryview(buf)[: ans.length], node.label)
