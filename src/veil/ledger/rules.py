"""``apply_tx``: the ledger's pure transition function, dispatching to the rules of each type
(rules_pay.py: transfers, channels; rules_lease.py: leases and their audits; rules_stake.py: stake,
nodes, validators; rules_names.py: names).

Works on an ``Overlay`` over any ``StateReader``; checks every rule before writing, so a
rejected transaction leaves the overlay untouched. Signatures are checked by the caller (in
batches, crypto/sigbatch.py) before ``apply_tx`` is called.
"""

from __future__ import annotations

from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.rules_common import check_fee
from veil.ledger.rules_lease import HANDLERS as _LEASE
from veil.ledger.rules_names import HANDLERS as _NAMES
from veil.ledger.rules_pay import HANDLERS as _PAY
from veil.ledger.rules_stake import HANDLERS as _STAKE
from veil.ledger.state import Account, BlockEnv, Overlay
from veil.ledger.tx import Tx

_HANDLERS = {**_PAY, **_LEASE, **_STAKE, **_NAMES}
# A payee (a fresh node) may settle or claim before it holds anything: the fee comes out of the
# payout. A free-tier channel open needs no funds at all (but an account with allowance). A lease
# answer needs none either: its challenge paid for it.
_MAY_START_EMPTY = frozenset({txm.CHANNEL_SETTLE, txm.LEASE_CLAIM, txm.LEASE_ANSWER})


def apply_tx(ov: Overlay, tx: Tx, env: BlockEnv) -> None:
    """Apply one signature-checked transaction to ``ov``, or raise LedgerError and change nothing."""
    params = env.params
    if tx.chain != params.chain_id:
        raise LedgerError(f"transaction is for chain {tx.chain[:16]!r}…, this is {params.chain_id[:16]!r}…",
                          "wrong_chain")  # fmt: skip
    if not (tx.kind == txm.CHANNEL_OPEN and tx.amount == 0 and tx.fee == 0) and tx.kind != txm.LEASE_ANSWER:
        check_fee(params, tx)
    sender = ov.get_account(tx.sender)
    if sender is None:
        if tx.kind not in _MAY_START_EMPTY:
            raise LedgerError("the sending account has no funds", "insufficient_funds")
        sender = Account()
    if tx.nonce != sender.nonce:
        kind = "replayed" if tx.nonce < sender.nonce else "out of order (gap)"
        raise LedgerError(f"nonce {tx.nonce} is {kind}; the account's next nonce is {sender.nonce}", "bad_nonce")
    _HANDLERS[tx.kind](ov, tx, env, sender)
