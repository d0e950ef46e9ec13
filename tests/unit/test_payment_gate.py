"""The node's payment gate (node/payment_gate.py and its parts) over an in-memory chain: the
real gate, ledger view, free credit and payout index; only the ledger connection is an
adapter to MemoryChain. Issue 19 item 9: "manifest not here yet" is never cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from veil.client.channels import PayerChannels
from veil.crypto.sign import SigningKey
from veil.format.manifest import Manifest
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.channelbook import MemoryChequeStore
from veil.ledger.genesis import Genesis
from veil.ledger.params import GB, Params
from veil.ledger.state import Channel, allowance_left, channel_id, epoch_of
from veil.net.server import HTTPError
from veil.node.pay_credit import FreeCredit
from veil.node.pay_ledger import GateLedger
from veil.node.pay_payouts import PayoutIndex
from veil.node.payment_gate import PaymentGate, Prices
from veil.protocol import payments as pay
from veil.testing.clock import ManualClock
from veil.testing.ledger import MemoryChain

PARAMS = Params(chain_id="unit-gate", allowance_bytes=10_000, price_per_gb=GB, uploader_share_bp=2000)
PAYER = SigningKey(bytes([17]) * 32)
NODE = SigningKey(bytes([18]) * 32)
UPLOADER = address_of(SigningKey(bytes([19]) * 32).public_key)
PAYER_ADDR = address_of(PAYER.public_key)
SI = bytes(range(16))
MH = bytes(range(32))  # the slot's manifest hash (the gate only passes it to the payout lookup)


class ChainClient:
    """The three ledger reads the gate makes, answered from a MemoryChain."""

    def __init__(self, chain: MemoryChain) -> None:
        self.chain = chain

    def genesis(self) -> Genesis:
        return self.chain.genesis

    def channel(self, cid: bytes) -> Channel | None:
        return self.chain.channel(cid)

    def account(self, addr: bytes) -> dict[str, Any]:
        c = self.chain
        return {"allowance_left": allowance_left(c.params, c.account(addr), epoch_of(c.params, c.genesis.time, c.now))}


class FakeRequest:
    def __init__(self, cheque: bytes | None) -> None:
        self.headers = {pay.CHEQUE_HEADER: pay.encode_cheque_header(cheque)} if cheque else {}


def manifest(payout: bytes | None) -> bytes:
    return Manifest(si=SI, k=1, n=1, happy=1, segsize=4096, size=10, bsize=26, lbsize=26, roots=(bytes(32),),
                    segroot=bytes(32), meta=b"m", payout=payout).to_bytes()  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> tuple[PaymentGate, PayerChannels, bytes, dict[tuple[bytes, bytes], bytes]]:
    chain = MemoryChain.create(PARAMS, {PAYER_ADDR: 10**6}, pool=10**9)
    payee = address_of(NODE.public_key)
    chain.submit(T.channel_open(PAYER, chain.genesis.chain, 0, 1, payee, 10**5, chain.now + 100_000))
    chain.seal()
    cid = channel_id(PAYER_ADDR, 0)
    book = PayerChannels(tmp_path / "w.channels", PAYER)
    ch = chain.channel(cid)
    assert ch is not None
    book.record(cid, chain.genesis.chain, ch)
    credit = FreeCredit(1 << 20, settle_wait=0.0)
    client = ChainClient(chain)
    ledger = GateLedger("unused", payee, MemoryChequeStore(), 1800, credit.learn,
                        connect=lambda _: client)  # type: ignore[arg-type,return-value]  # fmt: skip
    manifests: dict[tuple[bytes, bytes], bytes] = {}
    clock = ManualClock(float(chain.now))
    gate = PaymentGate(NODE, Prices(GB), ledger, credit, PayoutIndex(lambda si, mh: manifests.get((si, mh))), clock=clock)
    return gate, book, cid, manifests


def test_a_request_before_the_manifest_is_never_cached_as_no_payout(setup: Any) -> None:
    gate, book, cid, manifests = setup
    # The manifest is not here yet: a paid cheque cannot be judged, so the node says "ask again"
    # (503) and accepts nothing, neither the honest cheque nor one that skips the uploader.
    honest = book.pay(cid, 100, 0, 100, UPLOADER)
    with pytest.raises(HTTPError) as e:
        gate.charge(FakeRequest(honest.raw), SI, 100, MH)  # type: ignore[arg-type]
    assert e.value.status == 503 and e.value.headers.get("Retry-After")
    # The manifest arrives. The honest cheque is now accepted; nothing stale was cached.
    manifests[(SI, MH)] = manifest(UPLOADER)
    assert gate.charge(FakeRequest(honest.raw), SI, 100, MH) is None  # type: ignore[arg-type]
    # A cheque that skips the uploader's reward is refused.
    skip = book.pay(cid, 100, 0, 100, None)
    r = gate.charge(FakeRequest(skip.raw), SI, 100, MH)  # type: ignore[arg-type]
    assert r is not None and r.status == 402
    assert gate.stats.paid_bytes == 100


def test_free_bytes_need_a_staked_payer_but_no_manifest(setup: Any) -> None:
    gate, book, cid, _ = setup
    assert gate.charge(FakeRequest(None), SI, 100, MH).status == 402  # type: ignore[arg-type,union-attr]
    # The payer holds no stake, so it has no allowance (issue 19 item 1): free bytes are refused.
    free = book.pay(cid, 0, 100, 0, None)
    r = gate.charge(FakeRequest(free.raw), SI, 100, MH)  # type: ignore[arg-type]
    assert r is not None and r.status == 402 and b"allowance_spent" in bytes(r.body)  # type: ignore[arg-type]
    assert gate.stats.free_bytes == 0
