"""Made-up shares with a matching manifest, for storage tests (no encryption, no erasure code).

``fake_file`` builds n shares of ``nseg`` random blocks and a manifest whose ``roots`` and
``segroot`` are theirs, so a node accepts them into the manifest's slot; ``bodies`` gives the
upload bodies (``count x (segment leaf || block)``) and the one-shot body of a share.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from veil.format.manifest import Manifest, manifest_hash
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.storage import Commit, UploadRequest, encode_oneshot_head


@dataclass(frozen=True)
class FakeShare:
    si: bytes
    shnum: int
    blocks: list[bytes]
    seg_leaves: list[bytes]
    root: bytes
    segroot: bytes
    manifest: bytes

    @property
    def mhash(self) -> bytes:
        return manifest_hash(self.manifest)

    @property
    def request(self) -> UploadRequest:
        return UploadRequest(self.si, self.shnum, len(self.blocks), len(self.blocks[0]), len(self.blocks[-1]))

    @property
    def commit(self) -> Commit:
        return Commit(self.root, self.segroot, self.manifest)

    def body(self, start: int = 0, end: int | None = None) -> bytes:
        """The upload body of blocks [start, end)."""
        pairs = zip(self.seg_leaves[start:end], self.blocks[start:end], strict=True)
        return b"".join(sl + b for sl, b in pairs)

    def oneshot(self) -> bytes:
        r = self.request
        return encode_oneshot_head(r.nseg, r.bsize, r.lbsize, self.root, self.segroot, self.manifest) + self.body()


def fake_file(si: bytes, nseg: int = 3, bsize: int = 1024, lbsize: int | None = None, n: int = 3, k: int = 2,
              seed: int = 0, payout: bytes | None = None) -> list[FakeShare]:
    """``n`` shares of one made-up file under ``si``, all naming the same manifest."""
    rng = random.Random(seed)
    lb = bsize if lbsize is None else lbsize
    segsize = 4096
    size = segsize * (nseg - 1) + 100
    seg_leaves = [SEGMENT_TREE.leaf(rng.randbytes(64)) for _ in range(nseg)]
    segroot = Levels.build(SEGMENT_TREE, seg_leaves).root()
    shares_blocks = [[rng.randbytes(bsize if i < nseg - 1 else lb) for i in range(nseg)] for _ in range(n)]
    roots = [Levels.build(BLOCK_TREE, [BLOCK_TREE.leaf(b) for b in bl]).root() for bl in shares_blocks]
    man = Manifest(si=si, k=k, n=n, happy=n, segsize=segsize, size=size, bsize=bsize, lbsize=lb,
                   roots=tuple(roots), segroot=segroot, meta=rng.randbytes(32), payout=payout).to_bytes()
    return [FakeShare(si, i, shares_blocks[i], seg_leaves, roots[i], segroot, man) for i in range(n)]
