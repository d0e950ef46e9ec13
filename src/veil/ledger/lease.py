"""Storage leases: an uploader's escrow that pays one node, over time, for keeping one share.

A lease locks ``amount`` at ``lease_open``; it *accrues* to the node linearly from ``start``
to ``end``; the node takes what has accrued with ``lease_claim`` whenever it likes. The
payer (or the auditor it named) ends a lease with ``lease_fail`` when the node failed an
audit (a random block index whose block and Merkle proof it could not produce): accrual
stops at that block's time, the part not yet accrued goes back to the payer at once, and the
node can still claim what it had earned before. Pure: no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash

ACTIVE = 0
FAILED = 1
_H_LEASE = TaggedHash(labels.LEASE_ID)


class Lease(NamedTuple):
    payer: bytes
    payee: bytes  # the node's address
    auditor: bytes  # who may report a failed audit besides the payer (the payer itself if none)
    si: bytes  # storage index of the file
    shnum: int
    root: bytes  # the share's block-tree root (from the manifest): what audits check against
    size: int  # bytes of the share kept
    start: int
    end: int
    amount: int  # escrow at open
    escrow: int  # still locked
    claimed: int = 0
    status: int = ACTIVE
    failed_at: int = 0

    def accrued(self, now: int) -> int:
        """What the node has earned by ``now`` (stopped at the failure, if any)."""
        t = min(now, self.end, self.failed_at if self.status == FAILED else now)
        if t <= self.start:
            return 0
        return self.amount * (t - self.start) // (self.end - self.start)

    def claimable(self, now: int) -> int:
        return self.accrued(now) - self.claimed

    def done(self, now: int) -> bool:
        """Nothing is left to pay or refund and the lease is over: the record can go.

        A failed lease is kept until its original end even when nothing is left locked, so the
        failure stays on record (and visible to `veil audit` and the uploader) for the whole term."""
        return self.escrow == 0 and now >= self.end

    def to_wire(self) -> list[object]:
        return list(self)

    @classmethod
    def from_wire(cls, v: list[object]) -> Lease:
        return cls(*v)  # type: ignore[arg-type]


def lease_id(payer: bytes, open_nonce: int) -> bytes:
    return _H_LEASE(payer, open_nonce.to_bytes(8, "big"))
