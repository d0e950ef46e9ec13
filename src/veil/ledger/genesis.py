"""Genesis: the network parameters, the validator, and the only mint there will ever be.

Wire: canonical CBOR map ``{"m": "veil-genesis", "v": 1, "params": {...}, "time": unix
seconds, "validator": Ed25519 public key, "mints": [[address, amount], ...] (sorted by
address, no duplicates), "pool": amount}``; genesis hash = ``H("veil/genesis/v1", bytes)``.
``minted = sum(mints) + pool`` must be below 2**63, which is what makes balance overflow
impossible afterwards (money is only ever moved, never created).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sign import PUBLIC_KEY_SIZE
from veil.errors import IntegrityError, LedgerError
from veil.format import cbor
from veil.ledger.address import ADDRESS_SIZE, address_of
from veil.ledger.amount import MAX_AMOUNT
from veil.ledger.envelope import want_amount, want_bytes, want_fields, want_int
from veil.ledger.params import Params
from veil.ledger.state import ZERO_HASH, Account, MemoryState, Overlay, Supply, next_state_hash

MAGIC = "veil-genesis"
VERSION = 1
MAX_GENESIS_SIZE = 16 << 20
_H_GENESIS = TaggedHash(labels.GENESIS)


@dataclass(frozen=True)
class Genesis:
    raw: bytes
    params: Params
    time: int
    validator: bytes  # public key
    mints: tuple[tuple[bytes, int], ...]
    pool: int

    @property
    def hash(self) -> bytes:
        return _H_GENESIS(self.raw)

    @property
    def validator_address(self) -> bytes:
        return address_of(self.validator)

    @property
    def minted(self) -> int:
        return sum(v for _, v in self.mints) + self.pool

    def changes(self) -> Overlay:
        """Genesis as the first set of state changes (over an empty state)."""
        ov = Overlay(MemoryState())
        for addr, amount in self.mints:
            ov.accounts[addr] = Account(balance=amount)
        ov.supply = Supply(minted=self.minted, pool=self.pool)
        return ov

    @property
    def state_hash(self) -> bytes:
        return next_state_hash(ZERO_HASH, self.changes())

    def initial_state(self) -> MemoryState:
        st = MemoryState()
        st.commit(self.changes())
        return st


def make_genesis(params: Params, time: int, validator: bytes, mints: Mapping[bytes, int], pool: int) -> Genesis:
    value: dict[str, Any] = {
        "m": MAGIC,
        "v": VERSION,
        "params": params.to_wire(),
        "time": time,
        "validator": validator,
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
    want_fields(m, what, frozenset({"m", "v", "params", "time", "validator", "mints", "pool"}))
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
    g = Genesis(
        raw=raw,
        params=Params.from_wire(m["params"]),
        time=want_int(m, "time", what),
        validator=want_bytes(m, "validator", what, PUBLIC_KEY_SIZE),
        mints=tuple(mints),
        pool=want_amount(m, "pool", what, allow_zero=True),
    )
    if g.minted > MAX_AMOUNT:
        raise LedgerError("genesis mints more than 2^63-1 units", "bad_amount")
    return g
