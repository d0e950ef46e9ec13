"""An in-memory Bitcache chain for tests and simulations: genesis, a validator key, a manual
clock, blocks sealed on demand, and replay. Uses exactly the rules the validator uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger.block import encode_body, encode_sigs, make_header
from veil.ledger.chain import Replayer
from veil.ledger.genesis import Genesis, make_genesis
from veil.ledger.names_index import NameIndex
from veil.ledger.names_proof import ROOT_NAME
from veil.ledger.params import Params
from veil.ledger.rules import apply_tx
from veil.ledger.state import Account, BlockEnv, Channel, MemoryState, Overlay
from veil.ledger.tx import Tx, decode_tx


@dataclass
class MemoryChain:
    genesis: Genesis
    validator: SigningKey
    now: int
    state: MemoryState = field(init=False)
    blocks: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    _open: Overlay = field(init=False)
    _txs: list[Tx] = field(default_factory=list)
    _time: int | None = None

    def __post_init__(self) -> None:
        self.state = self.genesis.initial_state()
        self._open = Overlay(self.state)
        self._head = self.genesis.hash
        self.names = NameIndex(())

    @classmethod
    def create(cls, params: Params, mints: Mapping[bytes, int], pool: int, start: int = 1_000_000) -> MemoryChain:
        v = SigningKey(bytes(range(32)))
        return cls(make_genesis(params, start, v.public_key, mints, pool), v, start)

    @property
    def params(self) -> Params:
        return self.genesis.params

    def submit(self, raw: bytes) -> Tx:
        """Check and apply into the open block; LedgerError (and no change) if rejected."""
        tx = decode_tx(raw)
        if not verify_fast(*tx.signature_item()):
            raise LedgerError("transaction signature does not verify", "bad_signature")
        # The open block's time is fixed by its first accepted transaction.
        when = self.now if self._time is None else self._time
        child = Overlay(self._open)
        apply_tx(child, tx, BlockEnv(self.params, self.genesis.time, when, self._head))
        self._time = when
        self._open.merge(child)
        self._txs.append(tx)
        return tx

    def seal(self) -> None:
        if not self._txs:
            return
        assert self._time is not None
        vset = self.state.vset.hash
        tree = self.names.preview(self._open)
        undo = {n: None if (r := self.state.names.get(n)) is None else r.encode() for n in self._open.names}
        new_hash = self.state.commit(self._open)
        self.names.advance(tree, undo)
        h = make_header(
            self.params.chain_id, len(self.blocks) + 1, self._head, self._time, [t.txid for t in self._txs], new_hash, vset,
            {ROOT_NAME: tree.root},
        )  # fmt: skip
        sigs = encode_sigs({self.validator.public_key: h.sign(self.validator)})
        self.blocks.append((h.raw, encode_body([t.raw for t in self._txs]), sigs))
        self._head = h.hash
        self._open, self._txs, self._time = Overlay(self.state), [], None

    def account(self, addr: bytes) -> Account:
        return self._open.get_account(addr) or Account()

    def channel(self, cid: bytes) -> Channel | None:
        return self._open.get_channel(cid)

    def nonce(self, addr: bytes) -> int:
        return self.account(addr).nonce

    def replay(self) -> Replayer:
        r = Replayer(self.genesis)
        for h, b, sg in self.blocks:
            r.apply_block(h, b, sg)
        return r
