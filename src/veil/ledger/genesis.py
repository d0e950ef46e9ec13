"""Genesis: the network parameters, the initial validator set, and the only mint there will ever be.

Wire: canonical CBOR map ``{"m": "veil-genesis", "v": 2, "params": {...}, "time": unix
seconds, "validators": [[public key, raft HOST:PORT, api HOST:PORT], ...] (sorted by key, no
duplicates), "mints": [[address, amount], ...] (sorted by address, no duplicates), "pool":
amount}``; genesis hash = ``H("veil/genesis/v2", bytes)``.

The chain id that every signed object carries is the hex of the genesis hash: ``params.chain_id``
in the genesis bytes is the network's *name* (``Genesis.name``), and ``Genesis.params`` is the
same parameters with ``chain_id`` set to the genesis hash, so that a transaction or cheque signed
for one chain can never be replayed on another, even one with the same name.
``minted = sum(mints) + pool`` must be below 2**63, which is what makes balance overflow
impossible afterwards (money is only ever moved, never created).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sign import PUBLIC_KEY_SIZE
from veil.errors import IntegrityError, LedgerError
from veil.format import cbor
from veil.ledger.address import ADDRESS_SIZE
from veil.ledger.amount import MAX_AMOUNT
from veil.ledger.envelope import want_amount, want_fields, want_int
from veil.ledger.params import Params
from veil.ledger.state import (
    ZERO_HASH,
    Account,
    MemoryState,
    Overlay,
    Supply,
    Validator,
    ValidatorSet,
    next_state_hash,
)

MAGIC = "veil-genesis"
VERSION = 2
MAX_GENESIS_SIZE = 16 << 20
_H_GENESIS = TaggedHash(labels.GENESIS)


@dataclass(frozen=True)
class Genesis:
    raw: bytes
    params: Params  # with chain_id = the genesis hash in hex (the chain id)
    name: str  # the network's name (params.chain_id as written in genesis)
    time: int
    validators: ValidatorSet
    mints: tuple[tuple[bytes, int], ...]
    pool: int

    @property
    def hash(self) -> bytes:
        return _H_GENESIS(self.raw)

    @property
    def chain(self) -> str:
        return self.params.chain_id

    @property
    def minted(self) -> int:
        return sum(v for _, v in self.mints) + self.pool

    def changes(self) -> Overlay:
        """Genesis as the first set of state changes (over an empty state)."""
        ov = Overlay(MemoryState())
        for addr, amount in self.mints:
            ov.accounts[addr] = Account(balance=amount)
        ov.supply = Supply(minted=self.minted, pool=self.pool)
        ov.vset = self.validators
        return ov

    @property
    def state_hash(self) -> bytes:
        return next_state_hash(ZERO_HASH, self.changes())

    def initial_state(self) -> MemoryState:
        st = MemoryState()
        st.commit(self.changes())
        return st


def make_genesis(params: Params, time: int, validators: Sequence[Validator] | bytes, mints: Mapping[bytes, int],
                 pool: int) -> Genesis:  # fmt: skip
    """``validators``: the initial set, or one public key (a single validator with no addresses yet)."""
    vs = [Validator(validators, "127.0.0.1:0", "127.0.0.1:0")] if isinstance(validators, bytes) else list(validators)
    value: dict[str, Any] = {
        "m": MAGIC,
        "v": VERSION,
        "params": params.to_wire(),
        "time": time,
        "validators": [[v.pub, v.raft, v.api] for v in sorted(vs)],
        "mints": [[a, v] for a, v in sorted(mints.items())],
        "pool": pool,
    }
    return decode_genesis(cbor.encode(value))


def decode_genesis(raw: bytes) -> Genesis:
    what = "genesis"
    try:
        m = cbor.decode(raw, MAX_GENESIS_SIZE)
    except IntegrityError as e:
        raise LedgerError(f"genesis: {e}", "malformed") from e
    if not isinstance(m, dict) or m.get("m") != MAGIC or m.get("v") != VERSION:
        raise LedgerError("not a version-1 Veil genesis", "malformed")
    want_fields(m, what, frozenset({"m", "v", "params", "time", "validators", "mints", "pool"}))
    vraw = m["validators"]
    if not isinstance(vraw, list) or not 0 < len(vraw) <= 64:
        raise LedgerError("genesis: validators must be a list of 1 to 64 members", "malformed")
    members: list[Validator] = []
    for item in vraw:
        if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], bytes)
                or len(item[0]) != PUBLIC_KEY_SIZE or not all(isinstance(x, str) and 0 < len(x) <= 255 for x in item[1:])):
            raise LedgerError("genesis: each validator is [key, raft HOST:PORT, api HOST:PORT]", "malformed")
        if members and item[0] <= members[-1].pub:
            raise LedgerError("genesis: validators must be sorted by key without duplicates", "malformed")
        members.append(Validator(item[0], item[1], item[2]))
    mints_raw = m["mints"]
    if not isinstance(mints_raw, list):
        raise LedgerError("genesis: mints must be a list", "malformed")
    mints: list[tuple[bytes, int]] = []
    prev = b""
    for item in mints_raw:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], bytes) or len(item[0]) != ADDRESS_SIZE:
            raise LedgerError("genesis: each mint is [address, amount]", "malformed")
        if item[0] <= prev:
            raise LedgerError("genesis: mints must be sorted by address without duplicates", "malformed")
        prev = item[0]
        mints.append((item[0], want_amount({"a": item[1]}, "a", what)))
    named = Params.from_wire(m["params"])
    g = Genesis(
        raw=raw,
        params=replace(named, chain_id=_H_GENESIS(raw).hex()),
        name=named.chain_id,
        time=want_int(m, "time", what),
        validators=ValidatorSet(1, tuple(members)),
        mints=tuple(mints),
        pool=want_amount(m, "pool", what, allow_zero=True),
    )
    if g.minted > MAX_AMOUNT:
        raise LedgerError("genesis mints more than 2^63-1 units", "bad_amount")
    return g
