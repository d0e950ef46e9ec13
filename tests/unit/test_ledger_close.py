"""The payer's cooperative close (``channel_close`` with the payee's consent, ledger/close_consent.py):
the payer closes at once, the payee is paid exactly the cheque it consented to, and it cannot be
cheated by an older cheque, a forged consent, or cheques it would accept after consenting."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.channel_close import parse_consent
from veil.client.channels import PayerChannels
from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, LedgerError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.channelbook import ChannelBook, MemoryChequeStore
from veil.ledger.cheque_store import SqliteChequeStore
from veil.ledger.close_consent import sign_consent
from veil.ledger.params import GB, Params
from veil.ledger.state import channel_id
from veil.testing.ledger import MemoryChain

PARAMS = Params(chain_id="unit-close", allowance_bytes=10_000, price_per_gb=GB, uploader_share_bp=2000)
PAYER = SigningKey(bytes([31]) * 32)
NODE = SigningKey(bytes([32]) * 32)
OTHER = SigningKey(bytes([33]) * 32)
UPLOADER = address_of(SigningKey(bytes([34]) * 32).public_key)
PAYER_ADDR, NODE_ADDR = address_of(PAYER.public_key), address_of(NODE.public_key)
DEPOSIT = 3000


def setup(tmp_path: Path, store: object | None = None) -> tuple[MemoryChain, PayerChannels, ChannelBook, bytes]:
    chain = MemoryChain.create(PARAMS, {PAYER_ADDR: 10**6, address_of(OTHER.public_key): 100}, pool=10**9)
    chain.submit(T.channel_open(PAYER, chain.genesis.chain, 0, 1, NODE_ADDR, DEPOSIT, chain.now + 10_000))
    chain.seal()
    cid = channel_id(PAYER_ADDR, 0)
    ch = chain.channel(cid)
    assert ch is not None
    payer = PayerChannels(tmp_path / "w.channels", PAYER)
    payer.record(cid, chain.genesis.chain, ch)
    book = ChannelBook(chain.params, NODE_ADDR, store or MemoryChequeStore())  # type: ignore[arg-type]
    book.track(cid, ch)
    return chain, payer, book, cid


def code_of(chain: MemoryChain, raw: bytes) -> str:
    with pytest.raises(LedgerError) as e:
        chain.submit(raw)
    return e.value.code


def test_payer_closes_at_once_with_the_payees_consent(tmp_path: Path) -> None:
    chain, payer, book, cid = setup(tmp_path)
    chain_id = chain.genesis.chain
    book.accept(payer.pay(cid, 1000, 0, 1000, UPLOADER).raw, chain.now)
    book.accept(payer.pay(cid, 500, 0, 500, UPLOADER).raw, chain.now)
    minted = chain.replay().state.supply.minted
    cheque, sig = book.consent_close(NODE, cid)
    assert cheque is not None and cheque.seq == 2
    # From the consent on, the node takes no more cheques on the channel: nothing it serves later
    # can be cut off by a close at the consented cheque.
    with pytest.raises(LedgerError) as e:
        book.accept(payer.pay(cid, 100, 0, 100, UPLOADER).raw, chain.now)
    assert e.value.code == "channel_expired"
    ch = chain.channel(cid)
    assert ch is not None
    consent = parse_consent({"payee_key": NODE.public_key, "consent": sig, "cheque": cheque.raw}, chain_id, cid, ch)
    before = chain.account(PAYER_ADDR).balance
    chain.submit(T.channel_close(PAYER, chain_id, 1, 1, cid, consent.cheque, consent.payee_key, consent.sig))
    chain.seal()
    assert chain.channel(cid) is None
    assert chain.account(UPLOADER).balance == 300  # 20 % of the 1500 paid
    assert chain.account(NODE_ADDR).balance == 1200
    assert chain.account(PAYER_ADDR).balance == before - 1 + DEPOSIT - 1500
    r = chain.replay()
    r.check_supply()
    assert r.state.supply.minted == minted


def test_the_payee_cannot_be_cheated(tmp_path: Path) -> None:
    chain, payer, book, cid = setup(tmp_path)
    chain_id = chain.genesis.chain
    old = payer.pay(cid, 1000, 0, 1000, UPLOADER)
    book.accept(old.raw, chain.now)
    book.accept(payer.pay(cid, 1000, 0, 1000, UPLOADER).raw, chain.now)
    latest, sig = book.consent_close(NODE, cid)
    assert latest is not None
    close = T.channel_close
    # An older cheque than the one consented to, or none at all: refused.
    assert code_of(chain, close(PAYER, chain_id, 1, 1, cid, old, NODE.public_key, sig)) == "bad_consent"
    assert code_of(chain, close(PAYER, chain_id, 1, 1, cid, None, NODE.public_key, sig)) == "bad_consent"
    # A consent signed by someone else, or a key that is not the payee's: refused.
    forged = sign_consent(OTHER, chain_id, cid, old.seq, old.raw)
    assert code_of(chain, close(PAYER, chain_id, 1, 1, cid, old, OTHER.public_key, forged)) == "bad_consent"
    assert code_of(chain, close(PAYER, chain_id, 1, 1, cid, old, NODE.public_key, forged)) == "bad_consent"
    # A consent for another chain or channel: refused.
    wrong = sign_consent(NODE, chain_id, bytes(32), latest.seq, latest.raw)
    assert code_of(chain, close(PAYER, chain_id, 1, 1, cid, latest, NODE.public_key, wrong)) == "bad_consent"
    # Only the payer sends it.
    assert code_of(chain, close(OTHER, chain_id, 0, 1, cid, latest, NODE.public_key, sig)) == "not_channel_party"
    # The client refuses a consent that would not verify before it pays a fee for it.
    ch = chain.channel(cid)
    assert ch is not None
    with pytest.raises(IntegrityError):
        parse_consent({"payee_key": NODE.public_key, "consent": forged, "cheque": latest.raw}, chain_id, cid, ch)
    with pytest.raises(IntegrityError):
        parse_consent({"payee_key": OTHER.public_key, "consent": forged}, chain_id, cid, ch)
    # The consented cheque closes it.
    chain.submit(close(PAYER, chain_id, 1, 1, cid, latest, NODE.public_key, sig))
    chain.seal()
    assert chain.account(NODE_ADDR).balance == 1600 and chain.channel(cid) is None


def test_consent_with_nothing_newer_than_settled(tmp_path: Path) -> None:
    chain, _payer, book, cid = setup(tmp_path)
    chain_id = chain.genesis.chain
    cheque, sig = book.consent_close(NODE, cid)  # nothing accepted: close at the settled state
    assert cheque is None
    chain.submit(T.channel_close(PAYER, chain_id, 1, 1, cid, None, NODE.public_key, sig))
    chain.seal()
    assert chain.channel(cid) is None and chain.account(PAYER_ADDR).balance == 10**6 - 2
    chain.replay().check_supply()


def test_consent_survives_a_node_restart(tmp_path: Path) -> None:
    store = SqliteChequeStore(tmp_path / "cheques.db")
    chain, payer, book, cid = setup(tmp_path, store)
    book.accept(payer.pay(cid, 10, 0, 10, UPLOADER).raw, chain.now)
    book.consent_close(NODE, cid)
    store.close()
    again = SqliteChequeStore(tmp_path / "cheques.db")
    book2 = ChannelBook(chain.params, NODE_ADDR, again)
    ch = chain.channel(cid)
    assert ch is not None
    book2.track(cid, ch)
    with pytest.raises(LedgerError) as e:
        book2.accept(payer.pay(cid, 10, 0, 10, UPLOADER).raw, chain.now)
    assert e.value.code == "channel_expired"
    again.close()
