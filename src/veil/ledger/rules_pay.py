"""Rules for payments: transfers, channels (open, top-up, settle, closes) and storage leases.

Each handler checks everything first and writes only when every rule held (see state.py).
Pure; the dispatcher is ``rules.apply_tx``.
"""

from __future__ import annotations

from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.amount import MAX_AMOUNT
from veil.ledger.cheque import check_successor
from veil.ledger.lease import ACTIVE as LEASE_ACTIVE
from veil.ledger.lease import FAILED as LEASE_FAILED
from veil.ledger.lease import Lease, lease_id
from veil.ledger.params import Params
from veil.ledger.rules_common import (
    charge,
    check_fee,
    credit,
    debit,
    payout_to_sender,
    take_fee,
    would_overflow,
)
from veil.ledger.rules_stake import pay_from_pool, pool_room
from veil.ledger.state import CLOSING, OPEN, Account, BlockEnv, Channel, Overlay, allowance_left, channel_id
from veil.ledger.tx import Tx


def _transfer(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    charge(ov, tx, env, sender, tx.amount)
    if tx.to != tx.sender and would_overflow(ov, tx.to, tx.amount):
        raise LedgerError("amount would overflow the recipient's balance", "bad_amount")
    debit(ov, tx, env, sender, tx.amount)
    credit(ov, tx.to, tx.amount)


def free_open_allowed(params: Params, acct: Account, epoch: int) -> bool:
    """May ``acct`` open a free-tier channel (no deposit, no fee) now? Only with allowance left, and
    at most ``free_opens_per_epoch`` times an epoch (the bound on fee-less transactions)."""
    opens = acct.free_opens if acct.epoch == epoch else 0
    return opens < params.free_opens_per_epoch and allowance_left(params, acct, epoch) > 0


def _open(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.to == tx.sender:
        raise LedgerError("a channel's payee must be another account", "bad_channel")
    if tx.expires <= env.time:
        raise LedgerError("the channel would already be expired", "bad_channel")
    cid = channel_id(tx.sender, tx.nonce)
    if tx.amount == 0 and tx.fee == 0:
        # A free-tier channel: cheques on it can only claim free bytes, so nothing is locked.
        if not free_open_allowed(env.params, sender, env.epoch):
            raise LedgerError("no free-tier channel opens left this epoch (or no allowance): pay the fee",
                              "fee_too_low")  # fmt: skip
        used, opens = (sender.used, sender.free_opens) if sender.epoch == env.epoch else (0, 0)
        debit(ov, tx, env, sender, 0, epoch=env.epoch, used=used, free_opens=opens + 1)
    else:
        check_fee(env.params, tx)
        charge(ov, tx, env, sender, tx.amount)
        debit(ov, tx, env, sender, tx.amount)
    ov.channels[cid] = Channel(payer=tx.sender, payer_pub=tx.pub, payee=tx.to, deposit=tx.amount, expires=tx.expires)


def _channel(ov: Overlay, tx: Tx) -> Channel:
    ch = ov.get_channel(tx.channel)
    if ch is None:
        raise LedgerError(f"no open channel {tx.channel.hex()[:16]}…", "unknown_channel")
    return ch


def _topup(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    if ch.payer != tx.sender:
        raise LedgerError("only the channel's payer can top it up", "not_channel_party")
    if ch.status != OPEN:
        raise LedgerError("the channel is closing", "channel_closing")
    if tx.expires and tx.expires < ch.expires:
        raise LedgerError("a top-up cannot shorten the channel", "bad_channel")
    if ch.total_deposit + tx.amount > MAX_AMOUNT:
        raise LedgerError("deposit would overflow", "bad_amount")
    charge(ov, tx, env, sender, tx.amount)
    debit(ov, tx, env, sender, tx.amount)
    ov.channels[tx.channel] = ch._replace(deposit=ch.deposit + tx.amount, expires=max(ch.expires, tx.expires))


def _settle(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    params = env.params
    if ch.payee != tx.sender:
        raise LedgerError("only the channel's payee can settle it", "not_channel_party")
    if tx.cheque is None and not tx.close:
        raise LedgerError("a settle without a cheque must close the channel", "malformed")
    supply = ov.get_supply()
    payer = ov.get_account(ch.payer) or Account()
    free_pay = 0
    charged = 0
    upd = ch
    to_up: tuple[tuple[bytes, int], ...] = ()
    to_payee = 0
    if tx.cheque is not None:
        c = tx.cheque
        c.verify(ch.payer_pub)
        s = check_successor(
            ch.settled(),
            c,
            chain=params.chain_id,
            channel=tx.channel,
            payer=ch.payer,
            total_deposit=ch.total_deposit,
            params=params,
        )
        # The free part is honoured only up to the payer's allowance left this epoch (and the
        # pool): a node extends free credit at its own risk, never at the network's.
        epoch = env.epoch
        charged = min(s.free_bytes, allowance_left(params, payer, epoch))
        # The pool pays only a registered node with a bond, up to its share of the epoch budget.
        free_pay = min(params.free_payout(charged), supply.pool, pool_room(ov, params, tx.sender, epoch))
        to_up, to_payee = s.to_uploaders, s.to_payee
        upd = ch._replace(
            deposit=ch.deposit - s.paid,
            seq=c.seq,
            paid=c.amount,
            free_bytes=c.free_bytes,
            paid_bytes=c.paid_bytes,
            uploaders=c.uploaders,
        )
        for addr, amt in to_up:
            if would_overflow(ov, addr, amt):
                raise LedgerError("uploader payout would overflow a balance", "bad_amount")
    got = to_payee + free_pay
    payout_to_sender(ov, tx, sender, got, "settlement")
    # All checks passed: write.
    if charged:
        used = payer.used if payer.epoch == env.epoch else 0
        ov.accounts[ch.payer] = payer._replace(epoch=env.epoch, used=used + charged)
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance + got - tx.fee, nonce=sender.nonce + 1)
    for addr, amt in to_up:
        credit(ov, addr, amt)
    if free_pay:
        ov.supply = supply._replace(pool=supply.pool - free_pay)
        pay_from_pool(ov, tx.sender, epoch, free_pay)
    take_fee(ov, tx.fee)
    if tx.close:
        if upd.deposit:
            credit(ov, ch.payer, upd.deposit)
        ov.channels[tx.channel] = None
    else:
        ov.channels[tx.channel] = upd


def _close_start(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    if ch.payer != tx.sender:
        raise LedgerError("only the channel's payer can start a unilateral close", "not_channel_party")
    if ch.status != OPEN:
        raise LedgerError("the channel is already closing", "channel_closing")
    if env.time < ch.expires:
        raise LedgerError(f"the channel does not expire until {ch.expires}", "not_expired")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.channels[tx.channel] = ch._replace(status=CLOSING, close_at=env.time + env.params.challenge_seconds)


def _finalize(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    if ch.payer != tx.sender:
        raise LedgerError("only the channel's payer can finalize its close", "not_channel_party")
    if ch.status != CLOSING:
        raise LedgerError("start a close first (channel_close_start)", "not_closing")
    if env.time < ch.close_at:
        raise LedgerError(f"the challenge window is open until {ch.close_at}", "challenge_open")
    if would_overflow(ov, tx.sender, ch.deposit):
        raise LedgerError("refund would overflow the payer's balance", "bad_amount")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    credit(ov, tx.sender, ch.deposit)
    ov.channels[tx.channel] = None


def _lease_open(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.to == tx.sender:
        raise LedgerError("a lease pays another account (the node)", "bad_lease")
    if tx.expires <= env.time:
        raise LedgerError("the lease would already be over", "bad_lease")
    charge(ov, tx, env, sender, tx.amount)
    lid = lease_id(tx.sender, tx.nonce)
    debit(ov, tx, env, sender, tx.amount)
    ov.leases[lid] = Lease(
        payer=tx.sender, payee=tx.to, auditor=tx.auditor or tx.sender, si=tx.si, shnum=tx.shnum, root=tx.root,
        size=tx.size, start=env.time, end=tx.expires, amount=tx.amount, escrow=tx.amount,
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


def _lease_fail(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    le = _lease(ov, tx)
    if tx.sender not in (le.payer, le.auditor):
        raise LedgerError("only the lease's payer or auditor can report a failed audit", "not_lease_party")
    if le.status != LEASE_ACTIVE:
        raise LedgerError("the lease has already failed", "lease_failed")
    if env.time >= le.end:
        raise LedgerError("the lease is over; there is nothing left to stop", "bad_lease")
    failed = le._replace(status=LEASE_FAILED, failed_at=env.time)
    refund = le.amount - failed.accrued(env.time)
    if would_overflow(ov, le.payer, refund):
        raise LedgerError("refund would overflow the payer's balance", "bad_amount")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    credit(ov, le.payer, refund)
    upd = failed._replace(escrow=le.escrow - refund)
    ov.leases[tx.lease] = None if upd.done(env.time) else upd


HANDLERS = {
    txm.TRANSFER: _transfer,
    txm.CHANNEL_OPEN: _open,
    txm.CHANNEL_TOPUP: _topup,
    txm.CHANNEL_SETTLE: _settle,
    txm.CHANNEL_CLOSE_START: _close_start,
    txm.CHANNEL_FINALIZE: _finalize,
    txm.LEASE_OPEN: _lease_open,
    txm.LEASE_CLAIM: _lease_claim,
    txm.LEASE_FAIL: _lease_fail,
}
