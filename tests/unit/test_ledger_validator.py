"""The ledger machine over its SQLite store: log entries become blocks, replays of the log are
skipped, verdicts are fixed by the entry (acknowledged = final), certificates, replay; the
node-side channel book and the payer's persisted channel state."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.channels import PayerChannels
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, PaymentRequiredError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.chain import Replayer
from veil.ledger.channelbook import ChannelBook, MemoryChequeStore
from veil.ledger.cheque import make_cheque
from veil.ledger.cheque_store import SqliteChequeStore
from veil.ledger.genesis import make_genesis
from veil.ledger.params import GB, Params
from veil.ledger.state import channel_id
from veil.ledger.store import LedgerStore
from veil.node.validator_core import LedgerMachine, Verdict, sigs_entry, txs_entry

VK = SigningKey(b"\x10" * 32)
PAYER, PAYEE = SigningKey(b"\x11" * 32), SigningKey(b"\x12" * 32)
A, B = address_of(PAYER.public_key), address_of(PAYEE.public_key)
G = make_genesis(Params(chain_id="unit", min_fee=1, price_per_gb=1000, allowance_bytes=10 * GB), 5000, VK.public_key,
                 {A: 10**12}, 10**9)  # fmt: skip
CHAIN = G.chain
PARAMS = G.params


class Core:
    """A one-member cluster without Raft: entries are applied in order, blocks signed at once."""

    def __init__(self, path: Path) -> None:
        s = LedgerStore(path)
        s.init_genesis(G)
        self.m = LedgerMachine(s, VK, lambda: 6000.0)
        self.index = s.applied()
        self.sigs: list[tuple[int, bytes, bytes]] = []
        self.m.on_block = lambda h: self.sigs.append((h.height, VK.public_key, h.sign(VK)))

    def submit(self, raws: list[bytes], t: int = 6000) -> list[Verdict]:
        self.index += 1
        self.m.apply(self.index, txs_entry(t, raws))
        if self.sigs:
            self.index += 1
            self.m.apply(self.index, sigs_entry(self.sigs))
            self.sigs = []
        got = self.m.verdicts.get(self.index - 1) or self.m.verdicts.get(self.index)
        assert got is not None
        return got


def replay(store: LedgerStore) -> Replayer:
    r = Replayer(G)
    h = 1
    while (b := store.block(h)) is not None:
        sigs = store.sigs(h)
        from veil.ledger.block import encode_sigs

        r.apply_block(b[0], b[1], encode_sigs(sigs))
        h += 1
    r.check_supply()
    return r


def test_entries_become_certified_blocks_and_replay(tmp_path: Path) -> None:
    core = Core(tmp_path / "l.db")
    raws = [T.transfer(PAYER, CHAIN, n, 1, B, 10 + n) for n in range(50)]
    verdicts = core.submit(raws[:30])
    assert all(v.error is None and v.height == 1 for v in verdicts)
    assert core.m.account(A)["nonce"] == 30
    # Resubmitting an accepted transaction is acknowledged again, not applied twice; a forged one is refused.
    bad = bytearray(T.transfer(PAYER, CHAIN, 50, 1, B, 1))
    bad[-1] ^= 1
    vs = core.submit([raws[3], *raws[30:], bytes(bad)])
    assert vs[0].error is None and vs[0].height == 1
    assert all(v.error is None for v in vs[1:21])
    assert vs[-1].error is not None and vs[-1].error.code == "bad_signature"
    assert core.m.tx_status(verdicts[0].txid or b"")["height"] == 1
    assert core.m.account(B)["balance"] == sum(10 + n for n in range(50))
    assert core.m.final_height() == 2
    r = replay(core.m.store)
    assert r.height == 2 and r.state.state_hash == core.m.store.head()[3]


def test_replayed_log_entries_are_skipped(tmp_path: Path) -> None:
    core = Core(tmp_path / "l.db")
    entry = txs_entry(6000, [T.transfer(PAYER, CHAIN, 0, 1, B, 5)])
    core.m.apply(1, entry)
    core.m.store.close()
    # After a restart the Raft journal is applied again from the start: nothing changes.
    again = Core(tmp_path / "l.db")
    again.m.apply(1, entry)
    assert again.m.account(B)["balance"] == 5 and again.m.store.head()[0] == 1


def test_verdict_fixed_by_the_entry_time_not_the_apply_time(tmp_path: Path) -> None:
    """Issue 18 item 6: a channel acknowledged just before its expiry stays open however late
    the entry is applied (after a crash, on a slow member): the time is in the entry."""
    core = Core(tmp_path / "l.db")
    v = core.submit([T.channel_open(PAYER, CHAIN, 0, 1, B, 1000, 6001)], t=6000)[0]
    assert v.error is None
    late = Core(tmp_path / "other.db")
    late.m.clock = lambda: 99_999.0  # applied long after, on another member: same verdict
    assert late.submit([T.channel_open(PAYER, CHAIN, 0, 1, B, 1000, 6001)], t=6000)[0].error is None
    assert late.m.store.head()[3] == core.m.store.head()[3]


def test_transaction_replayed_on_a_second_chain_is_refused(tmp_path: Path) -> None:
    """Issue 19 item 7: two chains with the same name and validator differ by genesis hash,
    which every signature covers."""
    other = make_genesis(Params(chain_id="unit", min_fee=1), 5001, VK.public_key, {A: 10**12}, 10**9)
    assert other.name == G.name and other.chain != G.chain
    raw = T.transfer(PAYER, CHAIN, 0, 1, B, 5)
    s = LedgerStore(tmp_path / "o.db")
    s.init_genesis(other)
    m = LedgerMachine(s, VK)
    m.apply(1, txs_entry(6000, [raw]))
    v = m.verdicts[1][0]
    assert v.error is not None and v.error.code == "wrong_chain"
    assert m.account(B)["balance"] == 0


def test_channel_book_and_payer_state(tmp_path: Path) -> None:
    core = Core(tmp_path / "l.db")
    core.submit([T.channel_open(PAYER, CHAIN, 0, 1, B, 1000, 9000)])
    cid = channel_id(A, 0)
    ch = core.m.store.get_channel(cid)
    assert ch is not None
    payer = PayerChannels(tmp_path / "w.channels", PAYER)
    payer.record(cid, CHAIN, ch)
    store = SqliteChequeStore(tmp_path / "cheques.db")
    book = ChannelBook(PARAMS, B, store)
    book.track(cid, ch)
    uploader = b"\x33" * 32
    for i in range(100):
        c = payer.pay(cid, amount=5, paid_bytes=1000, free_bytes=10 if i % 2 else 0, uploader=uploader)
        rec = book.accept(c.raw, now=7000)
        assert rec.delta.paid == 5
    # Replays and lower sequences are refused; so is going over the deposit.
    with pytest.raises(LedgerError) as e:
        book.accept(c.raw, now=7000)
    assert e.value.code == "stale_cheque"
    with pytest.raises(LedgerError) as e:
        book.accept(make_cheque(PAYER, CHAIN, cid, 500, 1001).raw, now=7000)
    assert e.value.code == "cheque_over_deposit"
    with pytest.raises(LedgerError) as e:
        book.accept(make_cheque(PAYEE, CHAIN, cid, 500, 600, 500, 100_000, {uploader: 600}).raw, now=7000)
    assert e.value.code == "bad_signature"
    with pytest.raises(LedgerError) as e:
        book.accept(make_cheque(PAYER, CHAIN, cid, 501, 600).raw, now=9000)
    assert e.value.code == "channel_expired"
    with pytest.raises(PaymentRequiredError):
        payer.pay(cid, amount=501)
    # The payer's state survives a restart, and re-signing gives the very same cheque.
    payer.close()
    payer2 = PayerChannels(tmp_path / "w.channels", PAYER)
    assert payer2.latest(cid) == c
    # A restarted node reloads the latest cheque before it acknowledges anything new.
    store.close()
    book2 = ChannelBook(PARAMS, B, SqliteChequeStore(tmp_path / "cheques.db"))
    book2.track(cid, ch)
    assert book2.latest(cid) == c
    with pytest.raises(LedgerError):
        book2.accept(c.raw, now=7000)
    # Settle with the latest cheque: 500 paid, 20% of it to the uploader, 500 bytes free from the pool.
    v = core.submit([book2.settle_tx(PAYEE, 0, 1, cid, close=True)])[0]
    assert v.error is None, v.error
    assert core.m.account(uploader)["balance"] == 100
    # The payee is no registered, bonded node, so the pool pays nothing for the free bytes.
    assert core.m.account(B)["balance"] == 400 - 1
    assert core.m.account(A)["balance"] == 10**12 - 1 - 500
    replay(core.m.store)


def test_memory_cheque_store_round_trip() -> None:
    s = MemoryChequeStore()
    s.save(b"a" * 32, b"x")
    assert list(s.load()) == [(b"a" * 32, b"x")]
    s.forget(b"a" * 32)
    assert list(s.load()) == []
