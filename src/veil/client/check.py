"""Check a file's health with only its verify cap: which shares exist, and are they intact?

Each holder is asked for a sample of block ranges (first, last and random ones; all of them
with ``full``), and every block is verified against the manifest's share root. No key is
needed and nothing is decrypted.
"""

from __future__ import annotations

import random
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from veil.errors import VeilError
from veil.format.caps import VerifyCap
from veil.format.manifest import Manifest
from veil.protocol.nodeinfo import NodeInfo

from .locate import locate
from .network import Network
from .payer import Paying
from .ranges import read_blocks

SAMPLES = 4
RANGE_BYTES = 4 << 20
CHECK_GRACE = 3.0  # seconds to wait for more holders after k answered (a read waits locate.GRACE)


@dataclass
class ShareStatus:
    shnum: int
    node: NodeInfo
    ok: bool
    problem: str = ""


@dataclass
class CheckReport:
    manifest: Manifest
    shares: list[ShareStatus] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    @property
    def healthy_shares(self) -> set[int]:
        return {s.shnum for s in self.shares if s.ok}

    @property
    def corrupt(self) -> list[ShareStatus]:
        return [s for s in self.shares if not s.ok]

    @property
    def missing(self) -> list[int]:
        return sorted(set(range(self.manifest.n)) - self.healthy_shares)

    @property
    def healthy(self) -> bool:
        return len(self.healthy_shares) == self.manifest.n

    @property
    def recoverable(self) -> bool:
        return len(self.healthy_shares) >= self.manifest.k


def verify_share_ranges(net: Network, node: NodeInfo, man: Manifest, shnum: int, ranges: list[tuple[int, int]],
                        payer: Paying | None = None) -> None:  # fmt: skip
    """Fetch each (start, count) range of a share and verify it; IntegrityError on any mismatch.
    ``payer`` pays nodes that charge for the blocks (a repairer on a charging network)."""
    mhash = man.hash()
    buf: bytearray | None = None
    for start, count in ranges:
        read_blocks(net.transport, node, man, mhash, shnum, start, count, payer, buf)


def sample_ranges(man: Manifest, full: bool, rng: random.Random) -> list[tuple[int, int]]:
    per = max(1, RANGE_BYTES // man.bsize)
    if full:
        return [(s, min(per, man.nseg - s)) for s in range(0, man.nseg, per)]
    picks = {0, man.nseg - 1} | {rng.randrange(man.nseg) for _ in range(SAMPLES - 2)}
    return [(p, 1) for p in sorted(picks)]


def check(net: Network, vcap: VerifyCap, full: bool = False, rng: random.Random | None = None,
          payer: Paying | None = None) -> CheckReport:  # fmt: skip
    # A check counts shares, so it gives slow holders longer than a read does (still bounded:
    # a node that never answers costs at most CHECK_GRACE, or locate's deadline).
    loc = locate(net, vcap.storage_index, vcap.manifest_hash, grace=CHECK_GRACE)
    man = loc.manifest
    # Which blocks are sampled must not be predictable by a node (it would keep just those).
    rng = rng or secrets.SystemRandom()
    jobs = [(shnum, node) for shnum, nodes in sorted(loc.holders.items()) for node in nodes]

    def one(job: tuple[int, NodeInfo]) -> ShareStatus:
        shnum, node = job
        try:
            verify_share_ranges(net, node, man, shnum, sample_ranges(man, full, rng), payer)
            return ShareStatus(shnum, node, True)
        except VeilError as e:
            return ShareStatus(shnum, node, False, str(e))

    report = CheckReport(man, unreachable=loc.unreachable)
    with ThreadPoolExecutor(max_workers=8) as ex:
        report.shares = list(ex.map(one, jobs)) if jobs else []
    return report
