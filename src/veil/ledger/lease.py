"""Storage leases: an uploader's escrow that pays one node, over time, for keeping one share.

A lease locks ``amount`` at ``lease_open``; it *accrues* to the node linearly from ``start``
to ``end``; the node takes what has accrued with ``lease_claim`` whenever it likes.

The lease commits only to what an audit needs: the share's block-tree root (a hash of its
ciphertext blocks), its number of blocks and the largest block length. It does not name the
file's storage index or the share number (payments.md, "What a lease reveals").

Audits are checked by the ledger, not believed: the payer (or the auditor it named) posts
``lease_challenge``; the ledger derives the challenged block index from the hash of the block
before the challenge (``challenge_index``: neither side can choose it, the node cannot know it
in advance); the node answers with ``lease_answer`` (the block and its Merkle path), which the
ledger verifies against ``root`` (``check_answer``). Only a challenge left unanswered past its
deadline lets ``lease_fail`` end the lease: accrual stops at the challenge's time, the part not
yet accrued goes back to the payer, and the node keeps what it had earned before. While a
challenge is open the node can claim only what accrued up to it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import IntegrityError, LedgerError
from veil.format.merkle import verify_range
from veil.format.share import BLOCK_TREE

ACTIVE = 0
FAILED = 1
MAX_LEASE_BLOCK = (1 << 20) + 1024  # largest block a lease can be audited on (the answer carries it)
MAX_LEASE_BLOCKS = 1 << 32
_H_LEASE = TaggedHash(labels.LEASE_ID)
_H_CHALLENGE = TaggedHash(labels.LEASE_CHALLENGE)


class Lease(NamedTuple):
    payer: bytes
    payee: bytes  # the node's address
    auditor: bytes  # who may challenge besides the payer (the payer itself if none)
    root: bytes  # the share's block-tree root (from the manifest): what answers are checked against
    nblocks: int  # leaves of that tree
    bsize: int  # the largest block (an answer carries one)
    size: int  # bytes of the share kept (what the price was computed on)
    start: int
    end: int
    amount: int  # escrow at open
    escrow: int  # still locked
    claimed: int = 0
    status: int = ACTIVE
    failed_at: int = 0
    chal_at: int = 0  # an open challenge's time (0: none open)
    chal_index: int = 0  # the block it asks for
    chal_due: int = 0  # answer by this block time, or the lease can be failed
    answered: int = 0  # challenges answered so far (feeds the next index)

    def accrued(self, now: int) -> int:
        """What the node has earned by ``now`` (stopped at the failure, held at an open challenge)."""
        t = min(now, self.end)
        if self.status == FAILED:
            t = min(t, self.failed_at)
        elif self.chal_at:
            t = min(t, self.chal_at)
        if t <= self.start:
            return 0
        return self.amount * (t - self.start) // (self.end - self.start)

    def claimable(self, now: int) -> int:
        return self.accrued(now) - self.claimed

    def done(self, now: int) -> bool:
        """Nothing is left to pay or refund and the lease is over: the record can go.

        A failed lease is kept until its original end even when nothing is left locked, so the
        failure stays on record (and visible to `veil audit` and the uploader) for the whole term."""
        return self.escrow == 0 and now >= self.end and not self.chal_at

    def challenge_open(self) -> bool:
        return self.status == ACTIVE and self.chal_at != 0

    def to_wire(self) -> list[object]:
        return list(self)

    @classmethod
    def from_wire(cls, v: list[object]) -> Lease:
        return cls(*v)  # type: ignore[arg-type]


def lease_id(payer: bytes, open_nonce: int) -> bytes:
    return _H_LEASE(payer, open_nonce.to_bytes(8, "big"))


def challenge_index(prev_block: bytes, lid: bytes, answered: int, nblocks: int) -> int:
    """The block a challenge asks for: from the hash of the block before the challenge's block
    (unknown to the node until then, and not chosen by the challenger's transaction)."""
    h = _H_CHALLENGE(prev_block, lid, answered.to_bytes(8, "big"))
    return int.from_bytes(h, "big") % nblocks


def check_answer(le: Lease, block: bytes, proof: Sequence[bytes]) -> None:
    """LedgerError ``bad_proof`` unless ``block`` is block ``chal_index`` of the share ``le.root``."""
    if not block or len(block) > le.bsize:
        raise LedgerError("the answer's block has the wrong size", "bad_proof")
    try:
        verify_range(BLOCK_TREE, le.root, le.nblocks, le.chal_index, [BLOCK_TREE.leaf(block)], proof)
    except IntegrityError as e:
        raise LedgerError(f"the answer does not prove block {le.chal_index}: {e}", "bad_proof") from e
