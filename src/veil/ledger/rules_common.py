"""Helpers every transaction rule uses: the sender's fee and spend, credits, overflow checks.

Fees go to the allowance pool (there is no single block producer to pay in a validator
cluster, and the pool is what pays nodes for the free tier). Pure; imports state only.
"""

from __future__ import annotations

from veil.errors import LedgerError
from veil.ledger.amount import MAX_AMOUNT, format_amount
from veil.ledger.params import Params
from veil.ledger.state import Account, BlockEnv, Overlay
from veil.ledger.tx import Tx


def credit(ov: Overlay, addr: bytes, amount: int) -> None:
    a = ov.get_account(addr) or Account()
    ov.accounts[addr] = a._replace(balance=a.balance + amount)


def would_overflow(ov: Overlay, addr: bytes, amount: int) -> bool:
    a = ov.get_account(addr)
    return (a.balance if a else 0) + amount > MAX_AMOUNT


def charge(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account, spend: int) -> None:
    """Check the sender can pay ``spend`` + fee (no writes)."""
    if sender.balance < spend + tx.fee:
        raise LedgerError(
            f"balance {format_amount(sender.balance)} is less than {format_amount(spend + tx.fee)} needed",
            "insufficient_funds",
        )


def take_fee(ov: Overlay, fee: int) -> None:
    """The fee goes to the allowance pool (it cannot overflow: the pool is part of ``minted``)."""
    if fee:
        s = ov.get_supply()
        ov.supply = s._replace(pool=s.pool + fee)


def debit(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account, spend: int, **changes: int) -> None:
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance - spend - tx.fee, nonce=sender.nonce + 1, **changes)
    take_fee(ov, tx.fee)


def payout_to_sender(ov: Overlay, tx: Tx, sender: Account, got: int, what: str) -> None:
    """Check a payout (settle, claim) covers its fee and fits the sender's balance (no writes)."""
    if would_overflow(ov, tx.sender, got):
        raise LedgerError(f"{what} would overflow the balance", "bad_amount")
    if sender.balance + got < tx.fee:
        raise LedgerError(f"the {what} pays less than its fee", "insufficient_funds")


def check_fee(params: Params, tx: Tx) -> None:
    if tx.fee < params.min_fee:
        raise LedgerError(f"fee {tx.fee} is below the minimum {params.min_fee}", "fee_too_low")
