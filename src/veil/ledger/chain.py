"""Replaying a chain from genesis: check every block's signature, links, Merkle root, every
transaction's signature and rules, and the state hash after each block. Pure: the caller
fetches the blocks (from a store or over the network) and feeds them in order.
"""

from __future__ import annotations

from veil.crypto.sigbatch import verify_many
from veil.errors import LedgerError
from veil.ledger.address import address_of
from veil.ledger.block import BlockHeader, decode_body, decode_header, merkle_root
from veil.ledger.genesis import Genesis
from veil.ledger.state import BlockEnv, Overlay, apply_tx
from veil.ledger.tx import Tx, decode_tx


class Replayer:
    """Feeds blocks 1, 2, ... onto the genesis state, checking everything."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.state = genesis.initial_state()
        self.height = 0
        self.last_hash = genesis.hash
        self.time = genesis.time
        self.ntx = 0
        self.signatures = 0

    def apply_block(self, header_raw: bytes, body_raw: bytes) -> BlockHeader:
        g = self.genesis
        h = decode_header(header_raw)
        where = f"block {h.height}"
        h.verify(g.validator)
        self.signatures += 1
        if h.chain != g.params.chain_id:
            raise LedgerError(f"{where} is for chain {h.chain!r}", "wrong_chain")
        if h.height != self.height + 1:
            raise LedgerError(f"{where} follows height {self.height}", "bad_block")
        if h.prev != self.last_hash:
            raise LedgerError(f"{where} does not link to the previous block", "bad_block")
        if h.time < self.time:
            raise LedgerError(f"{where} goes back in time", "bad_block")
        raws = decode_body(body_raw)
        if len(raws) != h.ntx:
            raise LedgerError(f"{where} holds {len(raws)} transactions, its header says {h.ntx}", "bad_block")
        txs: list[Tx] = [decode_tx(r) for r in raws]
        if merkle_root([t.txid for t in txs]) != h.txroot:
            raise LedgerError(f"{where}: transactions do not match the header's Merkle root", "bad_block")
        ok = verify_many([t.signature_item() for t in txs])
        if not all(ok):
            raise LedgerError(f"{where} holds a transaction with a bad signature", "bad_signature")
        self.signatures += len(txs)
        env = BlockEnv(g.params, g.time, h.time, address_of(h.validator))
        ov = Overlay(self.state)
        for i, t in enumerate(txs):
            try:
                apply_tx(ov, t, env)
            except LedgerError as e:
                raise LedgerError(f"{where}, transaction {i}: {e}", e.code) from e
        if self.state.commit(ov) != h.state:
            raise LedgerError(f"{where}: state hash after replay does not match the header", "bad_state")
        supply = self.state.get_supply()
        if supply.minted != g.minted:
            raise LedgerError(f"{where}: minted supply changed", "bad_state")
        self.height, self.last_hash, self.time = h.height, h.hash, h.time
        self.ntx += len(txs)
        return h

    def check_supply(self) -> None:
        """The supply invariant over the whole state (O(accounts)); LedgerError ``bad_state``."""
        held = self.state.total_held()
        if held != self.genesis.minted:
            raise LedgerError(f"balances + deposits + pool = {held}, but {self.genesis.minted} were minted", "bad_state")
