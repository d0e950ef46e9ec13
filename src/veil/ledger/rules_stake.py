"""Rules for locked money: account stake (earns the allowance and the storage quota), storage
node registration with a bond (the only payees the allowance pool pays), and the validator set.

- ``stake {amount, for?}``: move ``amount`` from the sender's balance into the stake of
  ``for`` (default: the sender); a sponsor can stake for a user who holds nothing.
- ``unstake {amount}``: the sender's stake → unbonding, released ``unbond_seconds`` later
  (a new unstake restarts the wait); ``withdraw``: released unbonding → balance.
- ``node_register {node, bond, proof}``: bind node key ``node`` to the sender (the operator)
  with ``bond`` ≥ ``min_node_bond``; ``proof`` is the node key's signature over
  ``label ‖ chain ‖ operator address``, so nobody registers a node they do not run.
  ``node_unbond {node}`` stops pool payments and starts the unbonding wait;
  ``node_withdraw {node}`` returns the bond and deletes the record.
- ``validator_change {op, key, raft, api, approvals}``: add or remove a validator; approvals
  are signatures of more than half of the current validators over
  ``label ‖ chain ‖ CBOR([set version, op, key, raft, api])``; takes effect for the next block.

Pure: imports state and the common helpers only.
"""

from __future__ import annotations

from veil.crypto import labels
from veil.crypto.sigbatch import verify_fast
from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.envelope import sig_prefix
from veil.ledger.params import Params
from veil.ledger.rules_common import charge, debit
from veil.ledger.state import Account, BlockEnv, NodeReg, Overlay, Validator, ValidatorSet
from veil.ledger.tx import Tx

_REG_PREFIX = sig_prefix(labels.NODE_REG_SIG)
_VCHANGE_PREFIX = sig_prefix(labels.VALIDATOR_CHANGE_SIG)
MAX_VALIDATORS = 64


def node_registration_message(chain: str, operator: bytes) -> bytes:
    """What a node key signs to let ``operator`` register (and bond) it on chain ``chain``."""
    return _REG_PREFIX + chain.encode() + operator


def validator_change_message(chain: str, version: int, op: str, key: bytes, raft: str, api: str) -> bytes:
    """What each approving validator signs for a change of the set at ``version``."""
    return _VCHANGE_PREFIX + chain.encode() + cbor.encode([version, op, key, raft, api])


# -- the allowance pool's payees ---------------------------------------------------------------


def pool_room(ov: Overlay, params: Params, payee: bytes, epoch: int) -> int:
    """What the pool may still pay ``payee`` this epoch: 0 unless it is a registered node with a
    bond of at least ``min_node_bond``; else its bond's share of the epoch budget, less what it got."""
    reg = ov.get_node(payee)
    if reg is None or reg.unbond_at or reg.bond < params.min_node_bond:
        return 0
    bonded = ov.get_supply().bonded
    cap = params.pool_epoch_budget * reg.bond // max(bonded, reg.bond)
    paid = reg.pool_paid if reg.epoch == epoch else 0
    return max(0, cap - paid)


def pay_from_pool(ov: Overlay, payee: bytes, epoch: int, amount: int) -> None:
    reg = ov.get_node(payee)
    assert reg is not None
    paid = reg.pool_paid if reg.epoch == epoch else 0
    ov.nodes[payee] = reg._replace(epoch=epoch, pool_paid=paid + amount)


# -- stake -----------------------------------------------------------------------------------


def _stake(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    charge(ov, tx, env, sender, tx.amount)
    debit(ov, tx, env, sender, tx.amount)
    to = tx.to or tx.sender
    a = ov.get_account(to) or Account()
    ov.accounts[to] = a._replace(stake=a.stake + tx.amount)


def _unstake(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.amount > sender.stake:
        raise LedgerError(f"only {sender.stake} units are staked", "insufficient_funds")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0, stake=sender.stake - tx.amount, unbonding=sender.unbonding + tx.amount,
          unbond_at=env.time + env.params.unbond_seconds)  # fmt: skip


def _withdraw(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if not sender.unbonding:
        raise LedgerError("nothing is unbonding", "bad_amount")
    if env.time < sender.unbond_at:
        raise LedgerError(f"the unstaked money is locked until {sender.unbond_at}", "not_expired")
    charge(ov, tx, env, sender._replace(balance=sender.balance + sender.unbonding), 0)
    debit(ov, tx, env, sender._replace(balance=sender.balance + sender.unbonding), 0, unbonding=0, unbond_at=0)


# -- storage nodes -----------------------------------------------------------------------------


def _node_register(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    addr = address_of(tx.node)
    if ov.get_node(addr) is not None:
        raise LedgerError("this node is registered already", "bad_node")
    if tx.amount < env.params.min_node_bond:
        raise LedgerError(f"a node's bond must be at least {env.params.min_node_bond} units", "bad_amount")
    if not verify_fast(tx.node, node_registration_message(env.params.chain_id, tx.sender), tx.proof):
        raise LedgerError("the node key did not sign this registration", "bad_signature")
    charge(ov, tx, env, sender, tx.amount)
    debit(ov, tx, env, sender, tx.amount)
    ov.nodes[addr] = NodeReg(pub=tx.node, operator=tx.sender, bond=tx.amount, since=env.time)
    s = ov.get_supply()
    ov.supply = s._replace(bonded=s.bonded + tx.amount)


def _node_of_operator(ov: Overlay, tx: Tx) -> NodeReg:
    reg = ov.get_node(tx.to)
    if reg is None:
        raise LedgerError("no such registered node", "unknown_node")
    if reg.operator != tx.sender:
        raise LedgerError("only the node's operator can do that", "not_node_operator")
    return reg


def _node_unbond(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    reg = _node_of_operator(ov, tx)
    if reg.unbond_at:
        raise LedgerError("the node is unbonding already", "bad_node")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.nodes[tx.to] = reg._replace(unbond_at=env.time + env.params.unbond_seconds)
    s = ov.get_supply()
    ov.supply = s._replace(bonded=s.bonded - reg.bond)


def _node_withdraw(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    reg = _node_of_operator(ov, tx)
    if not reg.unbond_at or env.time < reg.unbond_at:
        raise LedgerError("unbond the node first, and wait until its bond is released", "not_expired")
    charge(ov, tx, env, sender._replace(balance=sender.balance + reg.bond), 0)
    debit(ov, tx, env, sender._replace(balance=sender.balance + reg.bond), 0)
    ov.nodes[tx.to] = None


# -- validators --------------------------------------------------------------------------------


def check_approvals(vset: ValidatorSet, message: bytes, approvals: tuple[tuple[bytes, bytes], ...]) -> None:
    seen: set[bytes] = set()
    for pub, sig in approvals:
        if pub in seen or pub not in vset.keys or not verify_fast(pub, message, sig):
            raise LedgerError("an approval is not a current validator's valid signature", "bad_signature")
        seen.add(pub)
    if len(seen) < vset.quorum:
        raise LedgerError(f"{len(seen)} approvals; {vset.quorum} of {len(vset.members)} validators needed",
                          "bad_signature")  # fmt: skip


def _validator_change(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    vset = ov.get_validators()
    msg = validator_change_message(env.params.chain_id, vset.version, tx.op, tx.node, tx.raft, tx.api)
    check_approvals(vset, msg, tx.approvals)
    if tx.op == txm.VALIDATOR_ADD:
        if tx.node in vset.keys:
            raise LedgerError("that key is a validator already", "bad_validator")
        if len(vset.members) >= MAX_VALIDATORS:
            raise LedgerError(f"at most {MAX_VALIDATORS} validators", "bad_validator")
        members = tuple(sorted((*vset.members, Validator(tx.node, tx.raft, tx.api))))
    else:
        if tx.node not in vset.keys:
            raise LedgerError("that key is not a validator", "bad_validator")
        if len(vset.members) == 1:
            raise LedgerError("the last validator cannot be removed", "bad_validator")
        members = tuple(m for m in vset.members if m.pub != tx.node)
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.vset = ValidatorSet(vset.version + 1, members)


HANDLERS = {
    txm.STAKE: _stake,
    txm.UNSTAKE: _unstake,
    txm.WITHDRAW: _withdraw,
    txm.NODE_REGISTER: _node_register,
    txm.NODE_UNBOND: _node_unbond,
    txm.NODE_WITHDRAW: _node_withdraw,
    txm.VALIDATOR_CHANGE: _validator_change,
}

