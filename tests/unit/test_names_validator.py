"""Names in the validator's machine over its SQLite store: headers commit to the names root,
a lookup is proved against the newest *final* block (the records as of that block, even when
the head has moved past it), a restart rebuilds the tree, and a replay checks every root."""

from __future__ import annotations

from pathlib import Path

from veil.crypto.sign import SigningKey, node_id
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.chain import Replayer
from veil.ledger.genesis import make_genesis
from veil.ledger.names import commit_hash
from veil.ledger.names_proof import verify_answer
from veil.ledger.params import Params
from veil.ledger.store import LedgerStore
from veil.node.validator_core import LedgerMachine, sigs_entry, txs_entry

VK = SigningKey(b"\x20" * 32)
OWNER = SigningKey(b"\x21" * 32)
ADDR = address_of(OWNER.public_key)
OTHER = address_of(SigningKey(b"\x22" * 32).public_key)
G = make_genesis(Params(chain_id="names-unit", name_commit_min=10), 5000, VK.public_key, {ADDR: 10**12}, 0)
TRUST = frozenset({node_id(VK.public_key)})


class Core:
    def __init__(self, store: LedgerStore) -> None:
        self.m = LedgerMachine(store, VK, lambda: 6000.0)
        self.index = store.applied()
        self.nonce = store.get_account(ADDR).nonce  # type: ignore[union-attr]

    def tx(self, t: int, kind: str, sign: bool = True, **fields: object) -> None:
        raw = T.build_tx(OWNER, G.chain, kind, self.nonce, 1, **fields)
        sigs: list[tuple[int, bytes, bytes]] = []
        self.m.on_block = lambda h: sigs.append((h.height, VK.public_key, h.sign(VK)))
        self.index += 1
        self.m.apply(self.index, txs_entry(t, [raw]))
        v = self.m.take_verdicts(self.index)
        assert v is not None and v[0].error is None, v
        self.nonce += 1
        if sign:
            self.index += 1
            self.m.apply(self.index, sigs_entry(sigs))

    def wallet(self, name: str = "alice") -> bytes | None:
        ans = self.m.name_answer(name)
        assert ans is not None
        res = verify_answer(ans, name, G.chain, TRUST)
        v = res.get("wallet")
        return v if isinstance(v, bytes) else None


def test_machine_proves_names_against_final_blocks(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    store.init_genesis(G)
    c = Core(store)
    salt = b"\x01" * 16
    c.tx(6000, T.NAME_COMMIT, hash=commit_hash("alice", ADDR, salt))
    c.tx(6010, T.NAME_REGISTER, name="alice", salt=salt, years=1)
    c.tx(6011, T.NAME_SET, name="alice", key="wallet", value=ADDR)
    assert c.wallet() == ADDR
    c.tx(6012, T.NAME_SET, sign=False, name="alice", key="wallet", value=OTHER)  # applied, not final yet
    assert c.m.final_height() < store.head()[0]
    assert c.wallet() == ADDR  # as of the final block: the proof is against what the validators signed
    c.tx(6013, T.NAME_COMMIT, hash=b"\x05" * 32)  # the next block, signed; the one before still is not final
    c.index += 1
    c.m.apply(c.index, sigs_entry([(store.head()[0] - 1, VK.public_key, _sign(store, store.head()[0] - 1))]))
    assert c.m.final_height() == store.head()[0]
    assert c.wallet() == OTHER
    # a restart rebuilds the tree from the store
    c2 = Core(store)
    assert c2.wallet() == OTHER
    r = Replayer(G)
    for h in range(1, store.head()[0] + 1):
        blk = store.block(h)
        assert blk is not None
        r.apply_block(blk[0], blk[1], c2.m.block(h)["sigs"])  # type: ignore[index]
    r.check_supply()
    assert not r.unchecked_roots


def _sign(store: LedgerStore, height: int) -> bytes:
    from veil.ledger.block import decode_header

    raw = store.header(height)
    assert raw is not None
    return decode_header(raw).sign(VK)
