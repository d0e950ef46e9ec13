"""Rules for storage leases: open, claim, and the audit the ledger checks itself (challenge,
answer, fail). See lease.py for the model and payments.md ("Paid storage") for the argument.

Each handler checks everything first and writes only when every rule held. Pure; the dispatcher
is ``rules.apply_tx``.
"""

from __future__ import annotations

from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.lease import ACTIVE, FAILED, Lease, challenge_index, check_answer, lease_id
from veil.ledger.rules_common import charge, credit, debit, payout_to_sender, take_fee, would_overflow
from veil.ledger.state import Account, BlockEnv, Overlay
from veil.ledger.tx import Tx

# A challenge pays for its answer too: the answer itself may carry no fee, so a node with no
# funds can always answer, and an auditor that challenges an honest node over and over pays
# for every answer it forces onto the chain.
CHALLENGE_FEE_FACTOR = 2


def _lease_open(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.to == tx.sender:
        raise LedgerError("a lease pays another account (the node)", "bad_lease")
    if tx.expires <= env.time:
        raise LedgerError("the lease would already be over", "bad_lease")
    charge(ov, tx, env, sender, tx.amount)
    lid = lease_id(tx.sender, tx.nonce)
    debit(ov, tx, env, sender, tx.amount)
    ov.leases[lid] = Lease(
        payer=tx.sender, payee=tx.to, auditor=tx.auditor or tx.sender, root=tx.root, nblocks=tx.nblocks,
        bsize=tx.bsize, size=tx.size, start=env.time, end=tx.expires, amount=tx.amount, escrow=tx.amount,
    )  # fmt: skip


def _lease(ov: Overlay, tx: Tx) -> Lease:
    le = ov.get_lease(tx.lease)
    if le is None:
        raise LedgerError(f"no lease {tx.lease.hex()[:16]}…", "unknown_lease")
    return le


def _lease_claim(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    le = _lease(ov, tx)
    if le.payee != tx.sender:
        raise LedgerError("only the lease's node can claim it", "not_lease_party")
    got = le.claimable(env.time)
    payout_to_sender(ov, tx, sender, got, "claim")
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance + got - tx.fee, nonce=sender.nonce + 1)
    take_fee(ov, tx.fee)
    upd = le._replace(escrow=le.escrow - got, claimed=le.claimed + got)
    ov.leases[tx.lease] = None if upd.done(env.time) else upd


def _auditable(le: Lease, tx: Tx, env: BlockEnv) -> None:
    if tx.sender not in (le.payer, le.auditor):
        raise LedgerError("only the lease's payer or auditor can challenge it", "not_lease_party")
    if le.status != ACTIVE:
        raise LedgerError("the lease has already failed", "lease_failed")


def _lease_challenge(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    le = _lease(ov, tx)
    _auditable(le, tx, env)
    if le.chal_at:
        raise LedgerError(f"a challenge is already open until {le.chal_due}", "challenge_open")
    if env.time >= le.end:
        raise LedgerError("the lease is over; there is nothing left to audit", "bad_lease")
    need = CHALLENGE_FEE_FACTOR * env.params.min_fee
    if tx.fee < need:
        raise LedgerError(f"a challenge's fee must be at least {need} (it pays for the answer)", "fee_too_low")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    index = challenge_index(env.prev, tx.lease, le.answered, le.nblocks)
    due = env.time + max(1, env.params.challenge_seconds)
    ov.leases[tx.lease] = le._replace(chal_at=env.time, chal_index=index, chal_due=due)


def _lease_answer(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    le = _lease(ov, tx)
    if le.payee != tx.sender:
        raise LedgerError("only the lease's node can answer its challenge", "not_lease_party")
    if not le.challenge_open():
        raise LedgerError("no challenge is open on this lease", "no_challenge")
    if env.time > le.chal_due:
        raise LedgerError(f"the answer is late (due by {le.chal_due})", "challenge_over")
    check_answer(le, tx.block, tx.bproof)
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.leases[tx.lease] = le._replace(chal_at=0, chal_index=0, chal_due=0, answered=le.answered + 1)


def _failing(le: Lease, tx: Tx, env: BlockEnv) -> tuple[Lease, int]:
    """The lease failed at its unanswered challenge, and the escrow it had not earned by then."""
    _auditable(le, tx, env)
    if not le.chal_at:
        raise LedgerError("challenge the node first (lease_challenge); only an unanswered challenge fails a lease",
                          "no_challenge")  # fmt: skip
    if env.time <= le.chal_due:
        raise LedgerError(f"the node may answer until {le.chal_due}", "challenge_open")
    failed = le._replace(status=FAILED, failed_at=le.chal_at, chal_at=0, chal_index=0, chal_due=0)
    # Claims were held at the challenge's time, so the node never claimed past failed_at.
    return failed, min(le.amount - failed.accrued(failed.failed_at), le.escrow)


def _lease_move(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    """Repair paid from the escrow: where ``lease_fail`` would refund the payer, the part not
    earned by the failed node pays ``amount`` to the sender (what the repair cost it) and the
    rest goes into a new lease, same share, same end, audited the same way, paying the node that
    now holds the share (``to``). The new lease's id is lease_id(sender, this nonce)."""
    le = _lease(ov, tx)
    failed, unearned = _failing(le, tx, env)
    if tx.to in (le.payee, le.payer):
        raise LedgerError("a moved lease pays another node than the failed one (and not the payer)", "bad_lease")
    if env.time >= le.end:
        raise LedgerError("the lease is over; there is nothing left to move", "bad_lease")
    if tx.amount >= unearned:
        raise LedgerError(f"the repair fee must be less than the unearned escrow ({unearned})", "bad_amount")
    if would_overflow(ov, tx.sender, tx.amount):
        raise LedgerError("the repair fee would overflow the sender's balance", "bad_amount")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    credit(ov, tx.sender, tx.amount)
    rest = unearned - tx.amount
    ov.leases[tx.lease] = failed._replace(escrow=le.escrow - unearned)
    ov.leases[lease_id(tx.sender, tx.nonce)] = Lease(
        payer=le.payer, payee=tx.to, auditor=le.auditor, root=le.root, nblocks=le.nblocks, bsize=le.bsize,
        size=le.size, start=env.time, end=le.end, amount=rest, escrow=rest,
    )  # fmt: skip


def _lease_fail(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    le = _lease(ov, tx)
    failed, refund = _failing(le, tx, env)
    if would_overflow(ov, le.payer, refund):
        raise LedgerError("refund would overflow the payer's balance", "bad_amount")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    credit(ov, le.payer, refund)
    upd = failed._replace(escrow=le.escrow - refund)
    ov.leases[tx.lease] = None if upd.done(env.time) else upd


HANDLERS = {
    txm.LEASE_OPEN: _lease_open,
    txm.LEASE_CLAIM: _lease_claim,
    txm.LEASE_CHALLENGE: _lease_challenge,
    txm.LEASE_ANSWER: _lease_answer,
    txm.LEASE_FAIL: _lease_fail,
    txm.LEASE_MOVE: _lease_move,
}
