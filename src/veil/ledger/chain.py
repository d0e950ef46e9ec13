"""Replaying a chain from genesis: check every block's certificate (a majority of the validator
set in force at that height), links, Merkle root, every transaction's signature and rules, and
the state hash after each block. Pure: the caller fetches the blocks (from a store or over the
network) and feeds them in order.
"""

from __future__ import annotations

from veil.crypto.sigbatch import verify_many
from veil.errors import LedgerError
from veil.ledger.block import BlockHeader, decode_body, decode_header, decode_sigs, merkle_root
from veil.ledger.genesis import Genesis
from veil.ledger.names_index import NameIndex
from veil.ledger.names_proof import ROOT_NAME
from veil.ledger.rules import apply_tx
from veil.ledger.state import BlockEnv, Overlay
from veil.ledger.tx import Tx, decode_tx

KNOWN_ROOTS: frozenset[str] = frozenset({ROOT_NAME})  # commitments this version recomputes (names.md)


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
        self.unchecked_roots: set[str] = set()
        self.set_changes = 0
        self.names = NameIndex(self.state.names.items())

    def apply_block(self, header_raw: bytes, body_raw: bytes, sigs_raw: bytes) -> BlockHeader:
        g = self.genesis
        h = decode_header(header_raw)
        where = f"block {h.height}"
        if h.chain != g.chain:
            raise LedgerError(f"{where} is for another chain", "wrong_chain")
        if h.height != self.height + 1:
            raise LedgerError(f"{where} follows height {self.height}", "bad_block")
        # Signed by a majority of the set in force when the block starts.
        self.signatures += h.check_certificate(self.state.vset, decode_sigs(sigs_raw))
        if h.prev != self.last_hash:
            raise LedgerError(f"{where} does not link to the previous block", "bad_block")
        if h.time < self.time:
            raise LedgerError(f"{where} goes back in time", "bad_block")
        self.unchecked_roots.update(k for k, _ in h.roots if k not in KNOWN_ROOTS)
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
        env = BlockEnv(g.params, g.time, h.time, h.prev)
        ov = Overlay(self.state)
        for i, t in enumerate(txs):
            try:
                apply_tx(ov, t, env)
            except LedgerError as e:
                raise LedgerError(f"{where}, transaction {i}: {e}", e.code) from e
        if ov.vset is not None:
            self.set_changes += 1
        tree = self.names.preview(ov)
        claimed = dict(h.roots).get(ROOT_NAME)
        if claimed is not None and claimed != tree.root:
            raise LedgerError(f"{where}: the names root does not match the names after replay", "bad_state")
        if self.state.commit(ov) != h.state:
            raise LedgerError(f"{where}: state hash after replay does not match the header", "bad_state")
        self.names.advance(tree, {})
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
            raise LedgerError(f"everything held adds up to {held}, but {self.genesis.minted} were minted", "bad_state")
