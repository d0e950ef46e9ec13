"""The ledger's state and its pure transition function ``apply_tx``.

State is three kinds of record: accounts (balance, nonce, allowance epoch and bytes used in
it), channels, and one supply record (minted, allowance pool). The supply invariant holds
after every transaction::

    sum(balances) + sum(channel deposits) + pool == minted

``apply_tx`` works on an ``Overlay`` over any ``StateReader`` (a dict in tests and replay,
SQLite in the validator). It checks every rule *before* writing anything, so a rejected
transaction leaves the overlay untouched. Signatures are checked by the caller (in
batches, see crypto/sigbatch.py) before ``apply_tx`` is called.

Each block commits ``state_hash = H(STATE, previous state hash, H(STATE_CHANGES, sorted
changed records))``: replaying the blocks from genesis must reach the same hash.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger import tx as txm
from veil.ledger.amount import MAX_AMOUNT, format_amount
from veil.ledger.cheque import Settled, check_successor
from veil.ledger.lease import ACTIVE as LEASE_ACTIVE
from veil.ledger.lease import FAILED as LEASE_FAILED
from veil.ledger.lease import Lease, lease_id
from veil.ledger.params import Params
from veil.ledger.tx import Tx

_H_STATE = TaggedHash(labels.STATE)
_H_CHANGES = TaggedHash(labels.STATE_CHANGES)
_H_CHANNEL = TaggedHash(labels.CHANNEL_ID)
_ACCOUNT = struct.Struct(">QQQQ")
_U32 = struct.Struct(">I")
ZERO_HASH = bytes(32)

OPEN = 0
CLOSING = 1


class Account(NamedTuple):
    balance: int = 0
    nonce: int = 0
    epoch: int = 0  # the epoch ``used`` counts in
    used: int = 0  # free-allowance bytes charged in ``epoch``


class Channel(NamedTuple):
    payer: bytes
    payer_pub: bytes
    payee: bytes
    deposit: int  # still locked
    expires: int  # unix seconds; the payer may start a unilateral close from then on
    status: int = OPEN
    close_at: int = 0  # CLOSING: the payer may finalize from then on
    seq: int = 0  # what has been settled so far (see cheque.Settled)
    paid: int = 0
    free_bytes: int = 0
    paid_bytes: int = 0
    uploaders: tuple[tuple[bytes, int], ...] = ()

    @property
    def total_deposit(self) -> int:
        return self.deposit + self.paid

    def settled(self) -> Settled:
        return Settled(self.seq, self.paid, self.free_bytes, self.paid_bytes, self.uploaders)

    def to_wire(self) -> list[object]:
        return [
            self.payer, self.payer_pub, self.payee, self.deposit, self.expires, self.status, self.close_at,
            self.seq, self.paid, self.free_bytes, self.paid_bytes, [[a, v] for a, v in self.uploaders],
        ]  # fmt: skip

    @classmethod
    def from_wire(cls, v: list[object]) -> Channel:
        ups = v[11]
        assert isinstance(ups, list)
        head: list[object] = list(v[:11])
        head.append(tuple((bytes(a), int(n)) for a, n in ups))
        return cls(*head)  # type: ignore[arg-type]


class Supply(NamedTuple):
    minted: int = 0
    pool: int = 0  # the allowance pool that pays nodes for free-tier bytes


def channel_id(payer: bytes, open_nonce: int) -> bytes:
    """A channel's id: fixed by the payer's address and the nonce of its channel_open."""
    return _H_CHANNEL(payer, open_nonce.to_bytes(8, "big"))


@dataclass(frozen=True)
class BlockEnv:
    """What a transaction may depend on besides state: the block it lands in."""

    params: Params
    genesis_time: int
    time: int  # the block's time, unix seconds
    validator: bytes  # the address fees go to

    @property
    def epoch(self) -> int:
        return epoch_of(self.params, self.genesis_time, self.time)


def epoch_of(params: Params, genesis_time: int, time: int) -> int:
    return max(0, time - genesis_time) // params.epoch_seconds


def allowance_left(params: Params, acct: Account | None, epoch: int) -> int:
    if acct is None or acct.epoch != epoch:
        return params.allowance_bytes
    return max(0, params.allowance_bytes - acct.used)


class StateReader(Protocol):
    def get_account(self, addr: bytes) -> Account | None: ...

    def get_channel(self, cid: bytes) -> Channel | None: ...

    def get_supply(self) -> Supply: ...

    def get_lease(self, lid: bytes) -> Lease | None: ...


class Overlay:
    """Pending writes over a reader; ``merge`` folds a child overlay in, ``changes`` lists them."""

    __slots__ = ("accounts", "base", "channels", "leases", "supply")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.accounts: dict[bytes, Account] = {}
        self.channels: dict[bytes, Channel | None] = {}  # None: deleted
        self.leases: dict[bytes, Lease | None] = {}  # None: deleted
        self.supply: Supply | None = None

    def get_account(self, addr: bytes) -> Account | None:
        a = self.accounts.get(addr)
        return a if a is not None else self.base.get_account(addr)

    def get_channel(self, cid: bytes) -> Channel | None:
        if cid in self.channels:
            return self.channels[cid]
        return self.base.get_channel(cid)

    def get_supply(self) -> Supply:
        return self.supply if self.supply is not None else self.base.get_supply()

    def get_lease(self, lid: bytes) -> Lease | None:
        if lid in self.leases:
            return self.leases[lid]
        return self.base.get_lease(lid)

    def merge(self, child: Overlay) -> None:
        self.accounts.update(child.accounts)
        self.channels.update(child.channels)
        self.leases.update(child.leases)
        if child.supply is not None:
            self.supply = child.supply

    def is_empty(self) -> bool:
        return not self.accounts and not self.channels and not self.leases and self.supply is None

    def entries(self) -> Iterator[bytes]:
        """Every changed record's canonical encoding, sorted (what the state hash covers)."""
        out: list[bytes] = [b"A" + k + _ACCOUNT.pack(*v) for k, v in self.accounts.items()]
        out.extend(b"C" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.channels.items())
        out.extend(b"L" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.leases.items())
        if self.supply is not None:
            out.append(b"S" + struct.pack(">QQ", *self.supply))
        out.sort()
        return iter(out)

    def changes_digest(self) -> bytes:
        h = _H_CHANGES.new()
        for e in self.entries():
            h.update(_U32.pack(len(e)))
            h.update(e)
        digest: bytes = h.digest()
        return digest


def next_state_hash(prev: bytes, changes: Overlay) -> bytes:
    return _H_STATE(prev, changes.changes_digest())


class MemoryState:
    """The whole state in dicts: for replay, tests and simulations."""

    def __init__(self) -> None:
        self.accounts: dict[bytes, Account] = {}
        self.channels: dict[bytes, Channel] = {}
        self.leases: dict[bytes, Lease] = {}
        self.supply = Supply()
        self.state_hash = ZERO_HASH

    def get_account(self, addr: bytes) -> Account | None:
        return self.accounts.get(addr)

    def get_channel(self, cid: bytes) -> Channel | None:
        return self.channels.get(cid)

    def get_supply(self) -> Supply:
        return self.supply

    def get_lease(self, lid: bytes) -> Lease | None:
        return self.leases.get(lid)

    def commit(self, ov: Overlay) -> bytes:
        """Fold ``ov`` in and advance the state hash; returns the new hash."""
        self.state_hash = next_state_hash(self.state_hash, ov)
        self.accounts.update(ov.accounts)
        for k, v in ov.channels.items():
            if v is None:
                self.channels.pop(k, None)
            else:
                self.channels[k] = v
        for k, lv in ov.leases.items():
            if lv is None:
                self.leases.pop(k, None)
            else:
                self.leases[k] = lv
        if ov.supply is not None:
            self.supply = ov.supply
        return self.state_hash

    def total_held(self) -> int:
        """Balances + deposits + lease escrows + pool: equals ``supply.minted`` whenever the rules held."""
        return (
            sum(a.balance for a in self.accounts.values())
            + sum(c.deposit for c in self.channels.values())
            + sum(le.escrow for le in self.leases.values())
            + self.supply.pool
        )


def _credit(ov: Overlay, addr: bytes, amount: int) -> None:
    a = ov.get_account(addr) or Account()
    ov.accounts[addr] = a._replace(balance=a.balance + amount)


def _would_overflow(ov: Overlay, addr: bytes, amount: int) -> bool:
    a = ov.get_account(addr)
    return (a.balance if a else 0) + amount > MAX_AMOUNT


def apply_tx(ov: Overlay, tx: Tx, env: BlockEnv) -> None:
    """Apply one signature-checked transaction to ``ov``, or raise LedgerError and change nothing."""
    params = env.params
    if tx.chain != params.chain_id:
        raise LedgerError(f"transaction is for chain {tx.chain!r}, this is {params.chain_id!r}", "wrong_chain")
    if tx.fee < params.min_fee:
        raise LedgerError(f"fee {tx.fee} is below the minimum {params.min_fee}", "fee_too_low")
    sender = ov.get_account(tx.sender)
    if sender is None:
        if tx.kind not in (txm.CHANNEL_SETTLE, txm.LEASE_CLAIM):
            raise LedgerError("the sending account has no funds", "insufficient_funds")
        # A payee (a fresh node) may settle before it holds anything: the fee comes out of the payout.
        sender = Account()
    if tx.nonce != sender.nonce:
        kind = "replayed" if tx.nonce < sender.nonce else "out of order (gap)"
        raise LedgerError(f"nonce {tx.nonce} is {kind}; the account's next nonce is {sender.nonce}", "bad_nonce")
    handler = _HANDLERS[tx.kind]
    # Each handler checks everything first, then calls ``pay`` to take the fee and spend.
    handler(ov, tx, env, sender)


def _charge(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account, spend: int) -> None:
    """Check the sender can pay ``spend`` + fee and the validator can receive the fee (no writes)."""
    if sender.balance < spend + tx.fee:
        raise LedgerError(
            f"balance {format_amount(sender.balance)} is less than {format_amount(spend + tx.fee)} needed",
            "insufficient_funds",
        )
    if tx.fee and env.validator != tx.sender and _would_overflow(ov, env.validator, tx.fee):
        raise LedgerError("fee would overflow the validator's balance", "bad_amount")


def _debit(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account, spend: int) -> None:
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance - spend - tx.fee, nonce=sender.nonce + 1)
    if tx.fee:
        _credit(ov, env.validator, tx.fee)


def _transfer(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    _charge(ov, tx, env, sender, tx.amount)
    if tx.to != tx.sender and _would_overflow(ov, tx.to, tx.amount + (tx.fee if tx.to == env.validator else 0)):
        raise LedgerError("amount would overflow the recipient's balance", "bad_amount")
    _debit(ov, tx, env, sender, tx.amount)
    _credit(ov, tx.to, tx.amount)


def _open(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.to == tx.sender:
        raise LedgerError("a channel's payee must be another account", "bad_channel")
    if tx.expires <= env.time:
        raise LedgerError("the channel would already be expired", "bad_channel")
    _charge(ov, tx, env, sender, tx.amount)
    cid = channel_id(tx.sender, tx.nonce)
    _debit(ov, tx, env, sender, tx.amount)
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
    _charge(ov, tx, env, sender, tx.amount)
    _debit(ov, tx, env, sender, tx.amount)
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
        free_pay = min(params.free_payout(charged), supply.pool)
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
            if _would_overflow(ov, addr, amt):
                raise LedgerError("uploader payout would overflow a balance", "bad_amount")
    got = to_payee + free_pay
    if _would_overflow(ov, tx.sender, got):
        raise LedgerError("payout would overflow the payee's balance", "bad_amount")
    if sender.balance + got < tx.fee:
        raise LedgerError("the settlement pays less than its fee", "insufficient_funds")
    if tx.fee and env.validator != tx.sender and _would_overflow(ov, env.validator, tx.fee):
        raise LedgerError("fee would overflow the validator's balance", "bad_amount")
    # All checks passed: write.
    if charged:
        used = payer.used if payer.epoch == env.epoch else 0
        ov.accounts[ch.payer] = payer._replace(epoch=env.epoch, used=used + charged)
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance + got - tx.fee, nonce=sender.nonce + 1)
    if tx.fee:
        _credit(ov, env.validator, tx.fee)
    for addr, amt in to_up:
        _credit(ov, addr, amt)
    if free_pay:
        ov.supply = supply._replace(pool=supply.pool - free_pay)
    if tx.close:
        if upd.deposit:
            _credit(ov, ch.payer, upd.deposit)
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
    _charge(ov, tx, env, sender, 0)
    _debit(ov, tx, env, sender, 0)
    ov.channels[tx.channel] = ch._replace(status=CLOSING, close_at=env.time + env.params.challenge_seconds)


def _finalize(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    ch = _channel(ov, tx)
    if ch.payer != tx.sender:
        raise LedgerError("only the channel's payer can finalize its close", "not_channel_party")
    if ch.status != CLOSING:
        raise LedgerError("start a close first (channel_close_start)", "not_closing")
    if env.time < ch.close_at:
        raise LedgerError(f"the challenge window is open until {ch.close_at}", "challenge_open")
    if _would_overflow(ov, tx.sender, ch.deposit):
        raise LedgerError("refund would overflow the payer's balance", "bad_amount")
    _charge(ov, tx, env, sender, 0)
    _debit(ov, tx, env, sender, 0)
    _credit(ov, tx.sender, ch.deposit)
    ov.channels[tx.channel] = None


def _lease_open(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    if tx.to == tx.sender:
        raise LedgerError("a lease pays another account (the node)", "bad_lease")
    if tx.expires <= env.time:
        raise LedgerError("the lease would already be over", "bad_lease")
    _charge(ov, tx, env, sender, tx.amount)
    lid = lease_id(tx.sender, tx.nonce)
    _debit(ov, tx, env, sender, tx.amount)
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
    if _would_overflow(ov, tx.sender, got):
        raise LedgerError("payout would overflow the node's balance", "bad_amount")
    if sender.balance + got < tx.fee:
        raise LedgerError("the claim pays less than its fee", "insufficient_funds")
    if tx.fee and env.validator != tx.sender and _would_overflow(ov, env.validator, tx.fee):
        raise LedgerError("fee would overflow the validator's balance", "bad_amount")
    ov.accounts[tx.sender] = sender._replace(balance=sender.balance + got - tx.fee, nonce=sender.nonce + 1)
    if tx.fee:
        _credit(ov, env.validator, tx.fee)
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
    if _would_overflow(ov, le.payer, refund + (tx.fee if le.payer == env.validator else 0)):
        raise LedgerError("refund would overflow the payer's balance", "bad_amount")
    _charge(ov, tx, env, sender, 0)
    _debit(ov, tx, env, sender, 0)
    _credit(ov, le.payer, refund)
    upd = failed._replace(escrow=le.escrow - refund)
    ov.leases[tx.lease] = None if upd.done(env.time) else upd


_HANDLERS = {
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
