"""The validator core over its SQLite store: blocks, restart with a pending mempool, replay;
the node-side channel book and the payer's persisted channel state."""

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
from veil.node.validator_core import ValidatorCore

CHAIN = "unit"
PARAMS = Params(chain_id=CHAIN, min_fee=1, price_per_gb=1000, allowance_bytes=10 * GB)
VK = SigningKey(b"\x10" * 32)
PAYER, PAYEE = SigningKey(b"\x11" * 32), SigningKey(b"\x12" * 32)
A, B = address_of(PAYER.public_key), address_of(PAYEE.public_key)
G = make_genesis(PARAMS, 5000, VK.public_key, {A: 10**12}, 10**9)


class Clock:
    def __init__(self) -> None:
        self.t = 6000.0

    def __call__(self) -> float:
        return self.t


def core_at(path: Path, clock: Clock) -> ValidatorCore:
    s = LedgerStore(path)
    s.init_genesis(G)
    return ValidatorCore(s, VK, clock)


def replay(store: LedgerStore) -> Replayer:
    r = Replayer(G)
    h = 1
    while (b := store.block(h)) is not None:
        r.apply_block(*b)
        h += 1
    r.check_supply()
    return r


def test_submit_seal_query_and_replay(tmp_path: Path) -> None:
    clock = Clock()
    core = core_at(tmp_path / "l.db", clock)
    raws = [T.transfer(PAYER, CHAIN, n, 1, B, 10 + n) for n in range(50)]
    verdicts = core.submit(raws[:30])
    assert all(v.error is None for v in verdicts)
    assert core.account(A)["nonce"] == 30  # pending state is visible at once
    assert core.tx_status(verdicts[0].txid or b"")["status"] == "pending"
    assert core.seal() is not None
    assert core.seal() is None  # nothing to seal
    assert [v.error is None for v in core.submit(raws[30:])] == [True] * 20
    # Resubmitting an accepted transaction is harmless; a forged one is refused with a code.
    assert core.submit([raws[3]])[0].error is None
    bad = bytearray(T.transfer(PAYER, CHAIN, 50, 1, B, 1))
    bad[-1] ^= 1
    assert core.submit([bytes(bad)])[0].error.code == "bad_signature"  # type: ignore[union-attr]
    core.seal()
    st = core.tx_status(verdicts[0].txid or b"")
    assert st["status"] == "committed" and st["height"] == 1
    assert core.account(B)["balance"] == sum(10 + n for n in range(50))
    hist = core.history(B, 100)
    assert len(hist) == 50
    r = replay(core.store)
    assert r.height == 2 and r.state.state_hash == core.store.head()[3]


def test_restart_keeps_pending_mempool(tmp_path: Path) -> None:
    clock = Clock()
    core = core_at(tmp_path / "l.db", clock)
    core.submit([T.transfer(PAYER, CHAIN, 0, 1, B, 5)])
    core.seal()
    pending = [T.transfer(PAYER, CHAIN, n, 1, B, 5) for n in range(1, 11)]
    ids = [v.txid for v in core.submit(pending)]
    # The process "dies" before sealing: open a new core on the same file.
    core.store.close()
    core2 = core_at(tmp_path / "l.db", clock)
    assert core2.pending_count() == 10
    assert all(core2.tx_status(i or b"")["status"] == "pending" for i in ids)
    core2.seal()
    assert all(core2.tx_status(i or b"")["status"] == "committed" for i in ids)
    assert core2.account(B)["balance"] == 55
    replay(core2.store)


def test_wrong_validator_key_is_refused(tmp_path: Path) -> None:
    s = LedgerStore(tmp_path / "l.db")
    s.init_genesis(G)
    with pytest.raises(Exception, match="validator"):
        ValidatorCore(s, PAYER)


def test_channel_book_and_payer_state(tmp_path: Path) -> None:
    clock = Clock()
    core = core_at(tmp_path / "l.db", clock)
    core.submit([T.channel_open(PAYER, CHAIN, 0, 1, B, 1000, 9000)])
    core.seal()
    cid = channel_id(A, 0)
    ch = core.store.get_channel(cid)
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
    core.seal()
    assert core.account(uploader)["balance"] == 100
    assert core.account(B)["balance"] == 400 + (500 * 1000 // GB) - 1
    assert core.account(A)["balance"] == 10**12 - 1 - 500
    replay(core.store)


def test_memory_cheque_store_round_trip() -> None:
    s = MemoryChequeStore()
    s.save(b"a" * 32, b"x")
    assert list(s.load()) == [(b"a" * 32, b"x")]
    s.forget(b"a" * 32)
    assert list(s.load()) == []
