"""The storage node's lease side (node/lease_answers.py) over a real ShareStore on disk and an
in-memory ledger: a lease notice is checked against the slot's manifest, and the answer the node
builds for a challenge is one the ledger's rule (ledger/lease.check_answer) accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger.address import address_of
from veil.ledger.lease import Lease, check_answer
from veil.node.context import NodeContext
from veil.node.lease_answers import LeaseAnswers
from veil.storage.store import ShareStore
from veil.testing.shares import fake_file

SI = bytes(range(16))
NODE = SigningKey(bytes([41]) * 32)


class _Ledger:
    """Only what LeaseAnswers reads from the ledger: leases by id."""

    def __init__(self) -> None:
        self.leases: dict[bytes, Lease] = {}

    def lease(self, lid: bytes) -> Lease | None:
        return self.leases.get(lid)


def _lease(root: bytes, nblocks: int, payee: bytes, index: int = 0) -> Lease:
    return Lease(payer=bytes(32), payee=payee, auditor=bytes(32), root=root, nblocks=nblocks, bsize=1024, size=1,
                 start=0, end=100, amount=10, escrow=10, chal_at=5, chal_index=index, chal_due=50)  # fmt: skip


def test_notice_is_checked_and_the_answer_verifies(tmp_path: Path) -> None:
    store = ShareStore(tmp_path / "storage")
    shares = fake_file(SI, nseg=5, lbsize=300)
    for sh in shares:
        store.put_oneshot(SI, sh.shnum, sh.oneshot())
    ctx = NodeContext(tmp_path, NODE, "127.0.0.1", 0)
    ctx.services.store = store
    ledger = _Ledger()
    kept: list[bytes] = []
    la = LeaseAnswers(ctx, lambda: ledger, kept.append)
    me = address_of(NODE.public_key)
    sh = shares[1]
    ledger.leases[b"L" * 32] = _lease(sh.root, 5, me, index=4)  # the last, short block
    ledger.leases[b"O" * 32] = _lease(sh.root, 5, bytes(32))  # pays another node
    ledger.leases[b"W" * 32] = _lease(shares[2].root, 5, me)  # another share's root
    with pytest.raises(LedgerError) as e:
        la.remember(b"O" * 32, SI, 1)
    assert e.value.code == "unknown_lease"
    with pytest.raises(LedgerError) as e:
        la.remember(b"W" * 32, SI, 1)
    assert e.value.code == "bad_lease"
    la.remember(b"L" * 32, SI, 1)
    assert kept == [b"L" * 32] and la.shares[b"L" * 32] == (SI, sh.mhash, 1)
    le = ledger.leases[b"L" * 32]
    block, proof = la.block_and_proof(SI, sh.mhash, 1, le.chal_index)
    assert block == sh.blocks[4]
    check_answer(le, block, proof)  # what the ledger will check
    # Remembered durably: a restarted node still knows where the share is.
    again = LeaseAnswers(ctx, lambda: ledger, kept.append)
    assert again.shares == la.shares
    store.close()
