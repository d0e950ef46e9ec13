"""The ledger's state: its records, the overlay transactions write into, and the state hash.

Records: accounts (balance, nonce, allowance epoch and bytes used in it, locked stake,
unbonding stake and when it is released, free-tier channel opens this epoch), channels,
leases, node registrations (a node id bound to an operator account and a bond), the
validator set, and one supply record (minted, allowance pool, total node bonds). The supply
invariant holds after every transaction::

    sum(balances + stakes + unbonding) + sum(channel deposits) + sum(lease escrows)
        + sum(node bonds) + sum(auction bids) + pool + burned == minted

The transition function lives in ``rules.py`` (channels, leases) and ``rules_stake.py``
(stake, node registration, validator set); it works on an ``Overlay`` over any
``StateReader`` (a dict here, SQLite in the validator) and checks every rule before it writes.

Each block commits ``state_hash = H(STATE, previous state hash, H(STATE_CHANGES, sorted
changed records))``: replaying the blocks from genesis must reach the same hash.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.format import cbor
from veil.ledger.cheque import Settled
from veil.ledger.lease import Lease
from veil.ledger.names import Auction, Commit, NameRec
from veil.ledger.params import Params

_H_STATE = TaggedHash(labels.STATE)
_H_CHANGES = TaggedHash(labels.STATE_CHANGES)
_H_CHANNEL = TaggedHash(labels.CHANNEL_ID)
_H_VSET = TaggedHash(labels.VALIDATOR_SET)
_ACCOUNT = struct.Struct(">QQQQQQQQ")
_U32 = struct.Struct(">I")
ZERO_HASH = bytes(32)

OPEN = 0
CLOSING = 1


class Account(NamedTuple):
    balance: int = 0
    nonce: int = 0
    epoch: int = 0  # the epoch ``used`` and ``free_opens`` count in
    used: int = 0  # free-allowance bytes charged in ``epoch``
    stake: int = 0  # locked: earns the allowance and the storage quota
    unbonding: int = 0  # unstaked, still locked until ``unbond_at``
    unbond_at: int = 0
    free_opens: int = 0  # fee-less free-tier channel opens in ``epoch``


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


class NodeReg(NamedTuple):
    """A storage node bound to an operator account by a bond (keyed by the node's address)."""

    pub: bytes  # the node's Ed25519 key (node id = SHA-256 of it)
    operator: bytes  # the account that bonded (and gets the bond back)
    bond: int
    since: int  # registration time
    epoch: int = 0  # the epoch ``pool_paid`` counts in
    pool_paid: int = 0  # what the allowance pool paid this node in ``epoch``
    unbond_at: int = 0  # 0: bonded; else the bond is released to the operator from then on

    def to_wire(self) -> list[object]:
        return list(self)

    @classmethod
    def from_wire(cls, v: list[object]) -> NodeReg:
        return cls(*v)  # type: ignore[arg-type]


class Validator(NamedTuple):
    pub: bytes  # Ed25519 key: signs blocks; its node id pins the member's TLS
    raft: str  # HOST:PORT of its Raft (replication) endpoint
    api: str  # HOST:PORT of its HTTPS ledger API


class ValidatorSet(NamedTuple):
    version: int
    members: tuple[Validator, ...]  # sorted by key

    def to_wire(self) -> list[object]:
        return [self.version, [[m.pub, m.raft, m.api] for m in self.members]]

    @classmethod
    def from_wire(cls, v: list[object]) -> ValidatorSet:
        ms = v[1]
        assert isinstance(ms, list)
        version = v[0]
        assert isinstance(version, int)
        return cls(version, tuple(Validator(bytes(p), str(r), str(a)) for p, r, a in ms))

    @property
    def keys(self) -> frozenset[bytes]:
        return frozenset(m.pub for m in self.members)

    @property
    def quorum(self) -> int:
        """Signatures a block needs: a majority of the members."""
        return len(self.members) // 2 + 1

    @property
    def hash(self) -> bytes:
        return _H_VSET(cbor.encode(self.to_wire()))

    def member(self, pub: bytes) -> Validator | None:
        return next((m for m in self.members if m.pub == pub), None)


class Supply(NamedTuple):
    minted: int = 0
    pool: int = 0  # the allowance pool that pays nodes for free-tier bytes
    bonded: int = 0  # sum of the bonds of registered nodes not unbonding (splits the pool budget)
    burned: int = 0  # destroyed for good: the winning bids of name auctions (names.md)

    def encode(self) -> bytes:
        """``"S" || u64 BE`` x 3, and a fourth (burned) once anything was burned: a chain that
        never burned keeps the encoding it always had."""
        return b"S" + (struct.pack(">QQQQ", *self) if self.burned else struct.pack(">QQQ", *self[:3]))


def channel_id(payer: bytes, open_nonce: int) -> bytes:
    """A channel's id: fixed by the payer's address and the nonce of its channel_open."""
    return _H_CHANNEL(payer, open_nonce.to_bytes(8, "big"))


@dataclass(frozen=True)
class BlockEnv:
    """What a transaction may depend on besides state: the block it lands in."""

    params: Params  # params.chain_id is the chain id: the genesis hash in hex
    genesis_time: int
    time: int  # the block's time, unix seconds
    prev: bytes = ZERO_HASH  # the previous block's hash (the genesis hash for height 1): seeds lease challenges

    @property
    def epoch(self) -> int:
        return epoch_of(self.params, self.genesis_time, self.time)


def epoch_of(params: Params, genesis_time: int, time: int) -> int:
    return max(0, time - genesis_time) // params.epoch_seconds


def allowance_left(params: Params, acct: Account | None, epoch: int) -> int:
    """Free download bytes ``acct`` may still use in ``epoch``: its stake's allowance less what it used."""
    if acct is None:
        return 0
    full = params.allowance_for(acct.stake)
    if acct.epoch != epoch:
        return full
    return max(0, full - acct.used)


class StateReader(Protocol):
    def get_account(self, addr: bytes) -> Account | None: ...

    def get_channel(self, cid: bytes) -> Channel | None: ...

    def get_supply(self) -> Supply: ...

    def get_lease(self, lid: bytes) -> Lease | None: ...

    def get_node(self, addr: bytes) -> NodeReg | None: ...

    def get_validators(self) -> ValidatorSet: ...

    def get_name(self, name: str) -> NameRec | None: ...

    def get_commit(self, h: bytes) -> Commit | None: ...

    def get_auction(self, name: str) -> Auction | None: ...


class Overlay:
    """Pending writes over a reader; ``merge`` folds a child overlay in, ``changes`` lists them."""

    __slots__ = ("accounts", "auctions", "base", "channels", "commits", "leases", "names", "nodes", "supply", "vset")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.accounts: dict[bytes, Account] = {}
        self.channels: dict[bytes, Channel | None] = {}  # None: deleted
        self.leases: dict[bytes, Lease | None] = {}  # None: deleted
        self.nodes: dict[bytes, NodeReg | None] = {}  # None: deleted
        self.supply: Supply | None = None
        self.vset: ValidatorSet | None = None
        self.names: dict[str, NameRec | None] = {}  # None: deleted
        self.commits: dict[bytes, Commit | None] = {}
        self.auctions: dict[str, Auction | None] = {}

    def get_name(self, name: str) -> NameRec | None:
        return self.names[name] if name in self.names else self.base.get_name(name)

    def get_commit(self, h: bytes) -> Commit | None:
        return self.commits[h] if h in self.commits else self.base.get_commit(h)

    def get_auction(self, name: str) -> Auction | None:
        return self.auctions[name] if name in self.auctions else self.base.get_auction(name)

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

    def get_node(self, addr: bytes) -> NodeReg | None:
        if addr in self.nodes:
            return self.nodes[addr]
        return self.base.get_node(addr)

    def get_validators(self) -> ValidatorSet:
        return self.vset if self.vset is not None else self.base.get_validators()

    def merge(self, child: Overlay) -> None:
        self.accounts.update(child.accounts)
        self.channels.update(child.channels)
        self.leases.update(child.leases)
        self.nodes.update(child.nodes)
        self.names.update(child.names)
        self.commits.update(child.commits)
        self.auctions.update(child.auctions)
        if child.supply is not None:
            self.supply = child.supply
        if child.vset is not None:
            self.vset = child.vset

    def is_empty(self) -> bool:
        return (not (self.accounts or self.channels or self.leases or self.nodes or self.names or self.commits
                     or self.auctions) and self.supply is None and self.vset is None)  # fmt: skip

    def entries(self) -> Iterator[bytes]:
        """Every changed record's canonical encoding, sorted (what the state hash covers)."""
        out: list[bytes] = [b"A" + k + _ACCOUNT.pack(*v) for k, v in self.accounts.items()]
        out.extend(b"C" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.channels.items())
        out.extend(b"L" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.leases.items())
        out.extend(b"N" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.nodes.items())
        out.extend(b"M" + cbor.encode([k, None if v is None else v.to_wire()]) for k, v in self.names.items())
        out.extend(b"K" + k + cbor.encode(None if v is None else v.to_wire()) for k, v in self.commits.items())
        out.extend(b"U" + cbor.encode([k, None if v is None else v.to_wire()]) for k, v in self.auctions.items())
        if self.supply is not None:
            out.append(self.supply.encode())
        if self.vset is not None:
            out.append(b"V" + cbor.encode(self.vset.to_wire()))
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
        self.nodes: dict[bytes, NodeReg] = {}
        self.supply = Supply()
        self.vset = ValidatorSet(0, ())
        self.names: dict[str, NameRec] = {}
        self.commits: dict[bytes, Commit] = {}
        self.auctions: dict[str, Auction] = {}
        self.state_hash = ZERO_HASH

    def get_name(self, name: str) -> NameRec | None:
        return self.names.get(name)

    def get_commit(self, h: bytes) -> Commit | None:
        return self.commits.get(h)

    def get_auction(self, name: str) -> Auction | None:
        return self.auctions.get(name)

    def get_account(self, addr: bytes) -> Account | None:
        return self.accounts.get(addr)

    def get_channel(self, cid: bytes) -> Channel | None:
        return self.channels.get(cid)

    def get_supply(self) -> Supply:
        return self.supply

    def get_lease(self, lid: bytes) -> Lease | None:
        return self.leases.get(lid)

    def get_node(self, addr: bytes) -> NodeReg | None:
        return self.nodes.get(addr)

    def get_validators(self) -> ValidatorSet:
        return self.vset

    def commit(self, ov: Overlay) -> bytes:
        """Fold ``ov`` in and advance the state hash; returns the new hash."""
        self.state_hash = next_state_hash(self.state_hash, ov)
        self.accounts.update(ov.accounts)
        _fold(self.channels, ov.channels)
        _fold(self.leases, ov.leases)
        _fold(self.nodes, ov.nodes)
        _fold(self.names, ov.names)
        _fold(self.commits, ov.commits)
        _fold(self.auctions, ov.auctions)
        if ov.supply is not None:
            self.supply = ov.supply
        if ov.vset is not None:
            self.vset = ov.vset
        return self.state_hash

    def total_held(self) -> int:
        """Everything held anywhere: equals ``supply.minted`` whenever the rules held."""
        return (
            sum(a.balance + a.stake + a.unbonding for a in self.accounts.values())
            + sum(c.deposit for c in self.channels.values())
            + sum(le.escrow for le in self.leases.values())
            + sum(n.bond for n in self.nodes.values())
            + sum(a.bid for a in self.auctions.values())
            + self.supply.pool
            + self.supply.burned
        )


def _fold(table: dict[Any, Any], changes: dict[Any, Any]) -> None:
    for k, v in changes.items():
        if v is None:
            table.pop(k, None)
        else:
            table[k] = v
