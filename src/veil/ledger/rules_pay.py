"""Rules for payments: transfers and channels (open, top-up, settle, the closes); leases are in
rules_lease.py.

Each handler checks everything first and writes only when every rule held (see state.py).
Pure; the dispatcher is ``rules.apply_tx``.
"""

from __future__ import annotations

from typing import NamedTuple

from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.amount import MAX_AMOUNT
from veil.ledger.cheque import Cheque, check_successor
from veil.ledger.close_consent import consent_ok
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


class _Payout(NamedTuple):
    """What settling one cheque moves (computed first; nothing written)."""

    upd: Channel  # the channel after it
    payer: Account
    charged: int  # free bytes charged to the payer's allowance
    free_pay: int  # what the pool pays the payee for them
    to_uploaders: tuple[tuple[bytes, int], ...]
    to_payee: int  # from the deposit


def _payout(ov: Overlay, env: BlockEnv, cid: bytes, ch: Channel, c: Cheque | None) -> _Payout:
    payer = ov.get_account(ch.payer) or Account()
    if c is None:
        return _Payout(ch, payer, 0, 0, (), 0)
    params = env.params
    c.verify(ch.payer_pub)
    s = check_successor(ch.settled(), c, chain=params.chain_id, channel=cid, payer=ch.payer,
                        total_deposit=ch.total_deposit, params=params)  # fmt: skip
    # The free part is honoured only up to the payer's allowance left this epoch (and the
    # pool): a node extends free credit at its own risk, never at the network's.
    charged = min(s.free_bytes, allowance_left(params, payer, env.epoch))
    # The pool pays only a registered node with a bond, up to its share of the epoch budget.
    free_pay = min(params.free_payout(charged), ov.get_supply().pool, pool_room(ov, params, ch.payee, env.epoch))
    for addr, amt in s.to_uploaders:
        if would_overflow(ov, addr, amt):
            raise LedgerError("uploader payout would overflow a balance", "bad_amount")
    upd = ch._replace(deposit=ch.deposit - s.paid, seq=c.seq, paid=c.amount, free_bytes=c.free_bytes,
                      paid_bytes=c.paid_bytes, uploaders=c.uploaders)  # fmt: skip
    return _Payout(upd, payer, charged, free_pay, s.to_uploaders, s.to_payee)


def _write_payout(ov: Overlay, env: BlockEnv, ch: Channel, p: _Payout) -> None:
    """Everything but the payee's own balance (the caller credits it)."""
    if p.charged:
        payer = ov.get_account(ch.payer) or Account()
        used = payer.used if payer.epoch == env.epoch else 0
        ov.accounts[ch.payer] = payer._replace(epoch=env.epoch, used=used + p.charged)
    for addr, amt in p.to_uploaders:
        credit(ov, addr, amt)
    if p.free_pay:
        supply = ov.get_supply()
        ov.supply = supply._replace(pool=supply.pool - p.free_pay)
        pay_from_pool(ov, ch.payee, env.epoch, p.free_pay)


def _end_channel(ov: Overlay, cid: bytes, upd: Channel) -> None:
    if upd.deposit:
        credit(ov, upd.payer, upd.deposit)
    ov.channels[cid] = None


def _settle(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    if ch.payee != tx.sender:
        raise LedgerError("only the channel's payee can settle it", "not_channel_party")
    if tx.cheque is None and not tx.close:
        raise LedgerError("a settle without a cheque must close the channel", "malformed")
    p = _payout(ov, env, tx.channel, ch, tx.cheque)
    got = p.to_payee + p.free_pay
    payout_to_sender(ov, tx, sender, got, "settlement")
    # All checks passed: write.
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance + got - tx.fee, nonce=sender.nonce + 1)
    _write_payout(ov, env, ch, p)
    take_fee(ov, tx.fee)
    if tx.close:
        _end_channel(ov, tx.channel, p.upd)
    else:
        ov.channels[tx.channel] = p.upd


def _coop_close(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    """The payer closes at once, with the payee's consent to the final cheque (close_consent.py)."""
    ch = _channel(ov, tx)
    if ch.payer != tx.sender:
        raise LedgerError("only the channel's payer can close it with the payee's consent", "not_channel_party")
    if address_of(tx.payee_key) != ch.payee:
        raise LedgerError("the consent is not from the channel's payee", "bad_consent")
    seq = tx.cheque.seq if tx.cheque is not None else ch.seq
    raw = tx.cheque.raw if tx.cheque is not None else None
    if not consent_ok(tx.payee_key, tx.consent, env.params.chain_id, tx.channel, seq, raw):
        raise LedgerError("the payee's consent does not cover this close", "bad_consent")
    charge(ov, tx, env, sender, 0)
    p = _payout(ov, env, tx.channel, ch, tx.cheque)
    got = p.to_payee + p.free_pay
    if would_overflow(ov, ch.payee, got) or would_overflow(ov, ch.payer, p.upd.deposit):
        raise LedgerError("the close would overflow a balance", "bad_amount")
    debit(ov, tx, env, sender, 0)
    _write_payout(ov, env, ch, p)
    credit(ov, ch.payee, got)
    _end_channel(ov, tx.channel, p.upd)


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


HANDLERS = {
    txm.TRANSFER: _transfer,
    txm.CHANNEL_OPEN: _open,
    txm.CHANNEL_TOPUP: _topup,
    txm.CHANNEL_SETTLE: _settle,
    txm.CHANNEL_CLOSE_START: _close_start,
    txm.CHANNEL_FINALIZE: _finalize,
    txm.CHANNEL_CLOSE: _coop_close,
}
