"""A small in-memory chain with named accounts, for the name rule and proof tests."""

from __future__ import annotations

from typing import Any

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.names import NameRec, commit_hash
from veil.ledger.params import Params
from veil.testing.ledger import MemoryChain

PARAMS = Params(chain_id="names-test", name_fee=10, name_commit_min=60, name_commit_max=600, name_year=1000,
                name_grace=100, name_auction_seconds=500, name_auction_extend=50, name_max_years=5)  # fmt: skip
FUNDS = 10**6
START = 1_000_000


class Chain:
    def __init__(self, people: tuple[str, ...] = ("alice", "bob", "carol")) -> None:
        self.keys = {p: SigningKey(bytes([i + 1]) * 32) for i, p in enumerate(people)}
        self.addr = {p: address_of(k.public_key) for p, k in self.keys.items()}
        self.c = MemoryChain.create(PARAMS, {a: FUNDS for a in self.addr.values()}, pool=0, start=START)

    @property
    def now(self) -> int:
        return self.c.now

    def at(self, t: int) -> Chain:
        self.c.now = t
        return self

    def raw(self, who: str, kind: str, **fields: Any) -> bytes:
        key = self.keys[who]
        return T.build_tx(key, self.c.params.chain_id, kind, self.c.nonce(self.addr[who]), 1, **fields)

    def do(self, who: str, kind: str, **fields: Any) -> None:
        self.c.submit(self.raw(who, kind, **fields))
        self.c.seal()

    def refused(self, code: str, who: str, kind: str, **fields: Any) -> None:
        with pytest.raises(LedgerError) as e:
            self.do(who, kind, **fields)
        assert e.value.code == code, str(e.value)

    def balance(self, who: str) -> int:
        return self.c.account(self.addr[who]).balance

    def name(self, name: str) -> NameRec | None:
        return self.c.state.get_name(name)

    def register(self, who: str, name: str, years: int = 1, salt: bytes = b"s" * 16) -> None:
        self.do(who, T.NAME_COMMIT, hash=commit_hash(name, self.addr[who], salt))
        self.at(self.now + PARAMS.name_commit_min)
        self.do(who, T.NAME_REGISTER, name=name, salt=salt, years=years)

    def conserved(self) -> None:
        st = self.c.state
        assert st.total_held() == st.supply.minted
        self.c.replay().check_supply()
