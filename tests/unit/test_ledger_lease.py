"""Storage leases and the audit the ledger checks itself (ledger/lease.py, rules_lease.py): a
challenge picks a block from the previous block's hash, the node answers with the block and its
Merkle path over a real share block tree, and only an unanswered challenge fails a lease."""

from __future__ import annotations

import os

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.lease import ACTIVE, FAILED, challenge_index, lease_id
from veil.ledger.params import GB, Params
from veil.testing.ledger import MemoryChain

WINDOW = 100
PARAMS = Params(chain_id="unit-lease", allowance_bytes=10_000, price_per_gb=GB, challenge_seconds=WINDOW)
PAYER = SigningKey(bytes([21]) * 32)
NODE = SigningKey(bytes([22]) * 32)  # holds nothing on the ledger: answers need no funds
AUDITOR = SigningKey(bytes([23]) * 32)
STRANGER = SigningKey(bytes([24]) * 32)
PAYER_ADDR, NODE_ADDR, AUD_ADDR = (address_of(k.public_key) for k in (PAYER, NODE, AUDITOR))
BLOCKS = [os.urandom(300 + i) for i in range(13)]  # an odd count: the tree's last node moves up
TREE = Levels.build(BLOCK_TREE, [BLOCK_TREE.leaf(b) for b in BLOCKS])
BSIZE = max(len(b) for b in BLOCKS)


def new_chain() -> MemoryChain:
    mints = {PAYER_ADDR: 10**6, AUD_ADDR: 10**4, address_of(STRANGER.public_key): 10**4}
    return MemoryChain.create(PARAMS, mints, pool=10**9)


CHAIN = new_chain().genesis.chain


def submit(chain: MemoryChain, raw: bytes) -> None:
    chain.submit(raw)
    chain.seal()


def code_of(chain: MemoryChain, raw: bytes) -> str:
    with pytest.raises(LedgerError) as e:
        chain.submit(raw)
    return e.value.code


def opened(amount: int = 10_000, term: int = 1000) -> tuple[MemoryChain, bytes]:
    chain = new_chain()
    submit(chain, T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, TREE.root(), len(BLOCKS), BSIZE, 4000,
                               chain.now + term, amount, auditor=AUD_ADDR))  # fmt: skip
    return chain, lease_id(PAYER_ADDR, 0)


def nonce(chain: MemoryChain, k: SigningKey) -> int:
    return chain.nonce(address_of(k.public_key))


def challenge(chain: MemoryChain, who: SigningKey, lid: bytes, fee: int = 2) -> int:
    submit(chain, T.lease_challenge(who, CHAIN, nonce(chain, who), fee, lid))
    le = chain.state.get_lease(lid)
    assert le is not None and le.challenge_open()
    return le.chal_index


def answer(lid: bytes, chain: MemoryChain, index: int, block: bytes | None = None) -> bytes:
    proof = TREE.range_proof(index, index + 1)
    return T.lease_answer(NODE, CHAIN, nonce(chain, NODE), 0, lid, BLOCKS[index] if block is None else block, proof)


def test_lease_accrues_and_claims() -> None:
    chain, lid = opened()
    start = chain.state.get_lease(lid).start  # type: ignore[union-attr]
    chain.now = start + 250
    submit(chain, T.lease_claim(NODE, CHAIN, 0, 1, lid))  # a fresh node: the fee comes out of the claim
    assert chain.account(NODE_ADDR).balance == 2500 - 1
    assert code_of(chain, T.lease_claim(PAYER, CHAIN, 1, 1, lid)) == "not_lease_party"
    chain.replay().check_supply()


def test_a_lying_auditor_cannot_fail_an_honest_node() -> None:
    chain, lid = opened()
    # Only the payer or its auditor may challenge, and a challenge pays for its answer.
    assert code_of(chain, T.lease_challenge(STRANGER, CHAIN, 0, 2, lid)) == "not_lease_party"
    assert code_of(chain, T.lease_challenge(AUDITOR, CHAIN, 0, 1, lid)) == "fee_too_low"
    # A bare report fails nothing any more: it needs an unanswered challenge.
    assert code_of(chain, T.lease_fail(AUDITOR, CHAIN, 0, 1, lid)) == "no_challenge"
    # The auditor claims the node failed, and challenges; the block asked for comes from the
    # hash of the block before, which neither side chose.
    before = chain._head
    index = challenge(chain, AUDITOR, lid)
    assert index == challenge_index(before, lid, 0, len(BLOCKS))
    assert code_of(chain, T.lease_challenge(PAYER, CHAIN, 1, 2, lid)) == "challenge_open"
    assert code_of(chain, T.lease_fail(AUDITOR, CHAIN, 1, 1, lid)) == "challenge_open"  # the node still has time
    # Wrong answers are refused and change nothing: another block, a tampered block, a short proof.
    other = (index + 1) % len(BLOCKS)
    assert code_of(chain, answer(lid, chain, index, BLOCKS[other])) == "bad_proof"
    flipped = bytearray(BLOCKS[index])
    flipped[0] ^= 1
    assert code_of(chain, answer(lid, chain, index, bytes(flipped))) == "bad_proof"
    short = T.lease_answer(NODE, CHAIN, 0, 0, lid, BLOCKS[index], TREE.range_proof(index, index + 1)[:-1])
    assert code_of(chain, short) == "bad_proof"
    assert code_of(chain, T.lease_answer(STRANGER, CHAIN, 0, 0, lid, BLOCKS[index], [])) == "not_lease_party"
    # The honest node answers (no fee, no funds needed) near the deadline: the challenge is closed.
    chain.now += WINDOW
    submit(chain, answer(lid, chain, index))
    le = chain.state.get_lease(lid)
    assert le is not None and le.status == ACTIVE and not le.challenge_open() and le.answered == 1
    chain.now += 1
    assert code_of(chain, T.lease_fail(AUDITOR, CHAIN, 1, 1, lid)) == "no_challenge"
    assert code_of(chain, answer(lid, chain, index)) == "no_challenge"
    # A second challenge asks for a block derived with the answered count; answered again.
    index2 = challenge(chain, PAYER, lid)
    submit(chain, answer(lid, chain, index2))
    # The node is paid in full over the term.
    chain.now = le.end + 10
    submit(chain, T.lease_claim(NODE, CHAIN, nonce(chain, NODE), 1, lid))
    assert chain.account(NODE_ADDR).balance == 10_000 - 1
    assert chain.state.get_lease(lid) is None
    chain.replay().check_supply()


def test_an_unanswered_challenge_fails_the_lease_at_the_challenge_time() -> None:
    chain, lid = opened()
    start = chain.state.get_lease(lid).start  # type: ignore[union-attr]
    chain.now = start + 100
    submit(chain, T.lease_claim(NODE, CHAIN, 0, 1, lid))  # earned 1000 by then
    chain.now = start + 400
    index = challenge(chain, PAYER, lid)
    # While the challenge is open the node can claim only what accrued up to it.
    chain.now = start + 450
    submit(chain, T.lease_claim(NODE, CHAIN, 1, 1, lid))
    assert chain.account(NODE_ADDR).balance == 4000 - 2
    chain.now = start + 400 + WINDOW + 1
    assert code_of(chain, answer(lid, chain, index)) == "challenge_over"  # too late
    payer_before = chain.account(PAYER_ADDR).balance
    submit(chain, T.lease_fail(PAYER, CHAIN, nonce(chain, PAYER), 1, lid))
    le = chain.state.get_lease(lid)
    assert le is not None and le.status == FAILED and le.failed_at == start + 400
    assert chain.account(PAYER_ADDR).balance == payer_before - 1 + 6000  # the part not earned by the challenge
    assert code_of(chain, T.lease_challenge(PAYER, CHAIN, nonce(chain, PAYER), 2, lid)) == "lease_failed"
    chain.now = start + 5000
    assert le.claimable(chain.now) == 0  # nothing accrues after the failure
    chain.replay().check_supply()


def test_lease_open_rules_and_limits() -> None:
    chain = new_chain()
    root = TREE.root()
    for raw, code in (
        (T.lease_open(PAYER, CHAIN, 0, 1, PAYER_ADDR, root, 13, BSIZE, 1, chain.now + 10, 5), "bad_lease"),
        (T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, root, 13, BSIZE, 1, chain.now, 5), "bad_lease"),
        (T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, root, 13, BSIZE, 1, chain.now + 10, 10**7), "insufficient_funds"),
        (T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, root, 0, BSIZE, 1, chain.now + 10, 5), "malformed"),
        (T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, root, 13, (1 << 20) + 1025, 1, chain.now + 10, 5), "malformed"),
        (T.lease_claim(NODE, CHAIN, 0, 1, bytes(32)), "unknown_lease"),
    ):
        assert code_of(chain, raw) == code
    # A lease answer is the one transaction that may be large; others are bounded as before.
    big = T.lease_answer(NODE, CHAIN, 0, 0, bytes(32), os.urandom(1 << 20), [bytes(32)] * 20)
    assert len(big) > T.MAX_TX_SIZE and T.decode_tx(big).kind == T.LEASE_ANSWER
    assert code_of(chain, T.transfer(PAYER, CHAIN, 0, 1, NODE_ADDR, 1, "x" * 300)) == "malformed"
    assert code_of(chain, T.build_tx(PAYER, CHAIN, T.LEASE_ANSWER, 0, 0, lease=bytes(32), block=b"x",
                                     proof=[b"short"])) == "malformed"  # fmt: skip


def test_what_a_lease_publishes_holds_no_storage_index() -> None:
    """The lease transaction carries the share root, block count and size, not the storage index or
    share number (payments.md, "What a lease reveals"); the lease record holds the same."""
    from veil.format import cbor

    chain = new_chain()
    body = T.decode_tx(T.lease_open(PAYER, CHAIN, 0, 1, NODE_ADDR, TREE.root(), 13, BSIZE, 1, chain.now + 9, 5)).body
    assert set(cbor.decode(body, len(body))) == {"chain", "type", "pub", "nonce", "fee", "payee", "root", "blocks",
                                                 "bsize", "size", "expires", "amount"}  # fmt: skip
    chain, lid = opened()
    le = chain.state.get_lease(lid)
    assert le is not None and len(le.to_wire()) == 18 and not hasattr(le, "si") and not hasattr(le, "shnum")


def test_a_failed_node_s_unearned_escrow_pays_the_repair_and_the_new_holder() -> None:
    """lease_move: repair paid from the lease escrow (issue 18 item 12)."""
    chain, lid = opened()
    start = chain.state.get_lease(lid).start  # type: ignore[union-attr]
    new_node = address_of(STRANGER.public_key)
    chain.now = start + 200
    fee = 1
    # Only after an unanswered challenge, and only by the payer or auditor.
    assert code_of(chain, T.lease_move(AUDITOR, CHAIN, nonce(chain, AUDITOR), fee, lid, new_node, 10)) == "no_challenge"
    challenge(chain, AUDITOR, lid)
    assert code_of(chain, T.lease_move(AUDITOR, CHAIN, nonce(chain, AUDITOR), fee, lid, new_node, 10)) == "challenge_open"
    chain.now = start + 200 + WINDOW + 1
    assert code_of(chain, T.lease_move(STRANGER, CHAIN, nonce(chain, STRANGER), fee, lid, new_node, 10)) == "not_lease_party"
    assert code_of(chain, T.lease_move(AUDITOR, CHAIN, nonce(chain, AUDITOR), fee, lid, NODE_ADDR, 10)) == "bad_lease"
    assert code_of(chain, T.lease_move(AUDITOR, CHAIN, nonce(chain, AUDITOR), fee, lid, new_node, 8000)) == "bad_amount"
    aud_before, payer_before = chain.account(AUD_ADDR).balance, chain.account(PAYER_ADDR).balance
    n = nonce(chain, AUDITOR)
    submit(chain, T.lease_move(AUDITOR, CHAIN, n, fee, lid, new_node, 300))
    old = chain.state.get_lease(lid)
    moved = chain.state.get_lease(lease_id(AUD_ADDR, n))
    assert old is not None and old.status == FAILED and old.escrow == 2000  # earned by the old node, still claimable
    assert moved is not None and moved.status == ACTIVE
    assert (moved.payer, moved.payee, moved.auditor, moved.root, moved.end) == (PAYER_ADDR, new_node, AUD_ADDR,
                                                                               TREE.root(), old.end)
    assert moved.amount == moved.escrow == 8000 - 300
    assert chain.account(AUD_ADDR).balance == aud_before - fee + 300  # the repair fee, from the escrow
    assert chain.account(PAYER_ADDR).balance == payer_before  # nothing refunded: it pays the new holder
    # The moved lease is audited like any other; the old one cannot be moved twice.
    assert code_of(chain, T.lease_move(AUDITOR, CHAIN, nonce(chain, AUDITOR), fee, lid, new_node, 0)) == "lease_failed"
    chain.now = start + 200 + WINDOW + 1 + 400
    submit(chain, T.lease_claim(STRANGER, CHAIN, nonce(chain, STRANGER), 1, lease_id(AUD_ADDR, n)))
    assert chain.account(new_node).balance > 10**4 - 10
    chain.replay().check_supply()
