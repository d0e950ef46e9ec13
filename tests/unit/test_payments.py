"""Pay as you download, without I/O: the node's rule (`judge`), the client's per-node state
machine, a payer/node exchange over fakes (MemoryChain, ChannelBook, PayerChannels), and the
ledger's rules for channels (leases: test_ledger_lease.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.channels import PayerChannels
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.channelbook import ChannelBook, MemoryChequeStore
from veil.ledger.cheque import Settled, check_successor, make_cheque
from veil.ledger.params import GB, Params
from veil.ledger.state import channel_id
from veil.protocol import payments as pay
from veil.protocol.payments import PayEvent, PayState
from veil.testing.ledger import MemoryChain

PARAMS = Params(chain_id="unit-pay", allowance_bytes=10_000, price_per_gb=GB, uploader_share_bp=2000)
PAYER = SigningKey(bytes([7]) * 32)
NODE = SigningKey(bytes([8]) * 32)
UPLOADER = address_of(SigningKey(bytes([9]) * 32).public_key)
PAYER_ADDR = address_of(PAYER.public_key)
OPERATOR = SigningKey(bytes([10]) * 32)  # stakes for the payer, bonds the node


def new_chain() -> MemoryChain:
    return MemoryChain.create(PARAMS, {PAYER_ADDR: 10**6, address_of(OPERATOR.public_key): 10**15}, pool=10**9)


CHAIN = new_chain().genesis.chain


def stake_and_register(chain: MemoryChain) -> None:
    from veil.ledger.rules_stake import node_registration_message

    op = address_of(OPERATOR.public_key)
    chain.submit(T.stake(OPERATOR, CHAIN, chain.nonce(op), 1, PARAMS.allowance_stake, PAYER_ADDR))
    proof = NODE.sign(node_registration_message(CHAIN, op))
    chain.submit(T.node_register(OPERATOR, CHAIN, chain.nonce(op), 1, NODE.public_key, PARAMS.min_node_bond, proof))
CID = bytes(32)
PRICE = GB  # one unit per byte


def cheque(seq: int, amount: int = 0, free: int = 0, paid: int = 0, ups: dict[bytes, int] | None = None):  # type: ignore[no-untyped-def]
    return make_cheque(PAYER, CHAIN, CID, seq, amount, free, paid, ups)


# -- judge -----------------------------------------------------------------------------------


def test_free_bytes_within_room_pay_for_the_request() -> None:
    j = pay.judge(Settled(), cheque(1, free=1000), 1000, PRICE, 5000, PAYER_ADDR, UPLOADER)
    assert j.code is None and j.honoured_free == 1000


def test_free_bytes_past_room_are_refused_as_allowance_spent() -> None:
    j = pay.judge(Settled(), cheque(1, free=1000), 1000, PRICE, 400, PAYER_ADDR, UPLOADER)
    assert j.code == pay.ALLOWANCE_SPENT
    # ... but the same claim plus paid bytes for the rest is accepted (the excess claim is the payer's loss).
    ok = pay.judge(Settled(), cheque(1, amount=600, free=1000, paid=600, ups={UPLOADER: 600}), 1000, PRICE, 400,
                   PAYER_ADDR, UPLOADER)  # fmt: skip
    assert ok.code is None and ok.honoured_free == 400 and ok.paid_bytes == 600


def test_cover_and_money_must_both_be_there() -> None:
    base = Settled(3, 500, 0, 500, ((UPLOADER, 500),))
    short_bytes = cheque(4, amount=1400, paid=1400, ups={UPLOADER: 1400})
    assert pay.judge(base, short_bytes, 1000, PRICE, 0, PAYER_ADDR, UPLOADER).code == pay.UNDERPAID
    short_money = cheque(4, amount=900, paid=1500, ups={UPLOADER: 900})
    assert pay.judge(base, short_money, 1000, PRICE, 0, PAYER_ADDR, UPLOADER).code == pay.UNDERPAID
    exact = cheque(4, amount=1500, paid=1500, ups={UPLOADER: 1500})
    assert pay.judge(base, exact, 1000, PRICE, 0, PAYER_ADDR, UPLOADER).code is None


def test_new_money_must_go_to_the_files_uploader_only() -> None:
    other = address_of(SigningKey(bytes([10]) * 32).public_key)
    none_named = cheque(1, amount=100, paid=100)
    assert pay.judge(Settled(), none_named, 100, PRICE, 0, PAYER_ADDR, UPLOADER).code == pay.BAD_UPLOADER
    wrong = cheque(1, amount=100, paid=100, ups={other: 100})
    assert pay.judge(Settled(), wrong, 100, PRICE, 0, PAYER_ADDR, UPLOADER).code == pay.BAD_UPLOADER
    # A file without a payout, or one's own file: no uploader may be named.
    assert pay.judge(Settled(), none_named, 100, PRICE, 0, PAYER_ADDR, None).code is None
    assert pay.judge(Settled(), none_named, 100, PRICE, 0, PAYER_ADDR, PAYER_ADDR).code is None
    assert pay.judge(Settled(), wrong, 100, PRICE, 0, PAYER_ADDR, None).code == pay.BAD_UPLOADER


def test_rounding_favours_the_node_and_never_fails_an_honest_payer() -> None:
    price = 7 * GB // 3  # 2.33 units per byte
    total = 0
    amount = 0
    for n in (1, 2, 3, 1000, 12345, 1):
        new_amount = pay.paid_cost(total + n, price)
        assert new_amount - amount >= pay.min_payment(n, price)
        total, amount = total + n, new_amount
    assert amount * GB >= total * price


# -- the client's machine ------------------------------------------------------------------------


def test_client_machine_paths() -> None:
    s = pay.step(PayState.UNKNOWN, PayEvent.SERVED)
    assert s is PayState.FREE
    s = pay.step(PayState.UNKNOWN, PayEvent.REFUSED_PAYMENT_REQUIRED)
    assert s is PayState.NEED_CHANNEL
    s = pay.step(s, PayEvent.CHANNEL_READY)
    assert s is PayState.PAYING
    assert pay.step(s, pay.event_for(pay.STALE)) is PayState.PAYING
    assert pay.step(s, pay.event_for(pay.ALLOWANCE_SPENT)) is PayState.PAYING
    assert pay.step(s, pay.event_for(pay.DEPOSIT_EXHAUSTED)) is PayState.NEED_TOPUP
    assert pay.step(s, pay.event_for(pay.CHANNEL_NEEDED)) is PayState.NEED_CHANNEL
    for st in PayState:
        assert pay.step(st, PayEvent.LIMIT) is PayState.STOPPED


def test_client_machine_rejects_what_the_protocol_does_not_have() -> None:
    with pytest.raises(pay.PayProtocolError):
        pay.step(PayState.NEED_CHANNEL, PayEvent.SERVED)  # served before the channel was ready
    with pytest.raises(pay.PayProtocolError):
        pay.step(PayState.STOPPED, PayEvent.SERVED)
    with pytest.raises(pay.PayProtocolError):
        pay.event_for("give_me_money")


def test_terms_are_believed_only_for_the_pinned_node_and_its_own_address() -> None:
    """Issue 19 item 2: a node advertising another node's payee (or key) is refused."""
    from dataclasses import replace

    from veil.crypto.sign import node_id

    t = pay.Terms(address_of(NODE.public_key), CHAIN, PRICE, 5, 16 << 20, 3600, NODE.public_key)
    assert pay.check_terms(t, node_id(NODE.public_key)) == t
    other = SigningKey(bytes([11]) * 32)
    with pytest.raises(pay.ForeignPayeeError):  # another node's payee, own key
        pay.check_terms(replace(t, payee=address_of(other.public_key)), node_id(NODE.public_key))
    with pytest.raises(pay.ForeignPayeeError):  # another node's key and payee: not the pinned node
        pay.check_terms(replace(t, payee=address_of(other.public_key), key=other.public_key), node_id(NODE.public_key))


def test_wire_pieces_round_trip_and_are_bounded() -> None:
    t = pay.Terms(address_of(NODE.public_key), CHAIN, PRICE, 5, 16 << 20, 3600, NODE.public_key)
    assert pay.Terms.from_wire(t.to_wire()) == t
    ref = pay.parse_refusal(pay.refusal(pay.UNDERPAID, "more", t))
    assert ref.code == pay.UNDERPAID and ref.terms == t
    raw = cheque(1, free=5).raw
    assert pay.decode_cheque_header(pay.encode_cheque_header(raw)) == raw
    with pytest.raises(Exception, match="too large"):
        pay.decode_cheque_header("A" * (pay.MAX_CHEQUE_HEADER + 1))


# -- a payer and a node over fakes -------------------------------------------------------------


class FakeNode:
    """The gate's decision order (node/payment_gate.py) over an in-memory channel book."""

    def __init__(self, chain: MemoryChain, cid: bytes, room: int) -> None:
        self.book = ChannelBook(chain.params, address_of(NODE.public_key), MemoryChequeStore())
        ch = chain.channel(cid)
        assert ch is not None
        self.book.track(cid, ch)
        self.cid, self.room, self.served = cid, room, 0

    def get(self, raw: bytes | None, nbytes: int, payout: bytes | None) -> str | None:
        if raw is None:
            return pay.PAYMENT_REQUIRED
        c = self.book.latest(self.cid)
        ch = self.book.channel(self.cid)
        assert ch is not None
        base = Settled.of(c) if c is not None else ch.settled()
        from veil.ledger.cheque import decode_cheque

        chq = decode_cheque(raw)
        try:
            check_successor(base, chq, chain=CHAIN, channel=self.cid, payer=ch.payer, total_deposit=ch.total_deposit,
                            params=PARAMS)  # fmt: skip
        except LedgerError as e:
            return pay.STALE if e.code == "stale_cheque" else e.code
        j = pay.judge(base, chq, nbytes, PRICE, self.room, ch.payer, payout)
        if j.code is not None:
            return j.code
        self.book.accept(raw, 0)
        self.room -= j.honoured_free
        self.served += nbytes
        return None


def _channel(tmp_path: Path, deposit: int) -> tuple[MemoryChain, PayerChannels, bytes]:
    chain = new_chain()
    stake_and_register(chain)
    chain.submit(T.channel_open(PAYER, CHAIN, 0, 1, address_of(NODE.public_key), deposit, chain.now + 10_000))
    chain.seal()
    cid = channel_id(PAYER_ADDR, 0)
    book = PayerChannels(tmp_path / "w.channels", PAYER)
    ch = chain.channel(cid)
    assert ch is not None
    book.record(cid, CHAIN, ch)
    return chain, book, cid


def test_exposure_is_bounded_to_one_request(tmp_path: Path) -> None:
    chain, book, cid = _channel(tmp_path, deposit=3000)
    node = FakeNode(chain, cid, room=1000)
    # Free first, then paid; each request paid for exactly.
    assert node.get(book.pay(cid, 0, 1000, 0).raw, 1000, UPLOADER) is None
    c2 = book.pay(cid, 1000, 0, 1000, UPLOADER)
    assert node.get(c2.raw, 1000, UPLOADER) is None
    # Replaying the last cheque buys nothing; asking for more than was paid buys nothing.
    assert node.get(c2.raw, 1000, UPLOADER) == pay.STALE
    c3 = book.pay(cid, 500, 0, 500, UPLOADER)
    assert node.get(c3.raw, 1000, UPLOADER) == pay.UNDERPAID
    # A client lying about its allowance: free bytes past the node's room are refused.
    c4 = book.pay(cid, 0, 5000, 0)
    assert node.get(c4.raw, 1000, UPLOADER) == pay.ALLOWANCE_SPENT
    # Past the deposit: refused, whatever the cheque says.
    over = make_cheque(PAYER, CHAIN, cid, 99, 3001, 6000, 5000, {UPLOADER: 3001})
    assert node.get(over.raw, 1, UPLOADER) == "cheque_over_deposit"
    # Lower totals with a higher sequence: refused.
    lower = make_cheque(PAYER, CHAIN, cid, 100, 10, 0, 0, {UPLOADER: 10})
    assert node.get(lower.raw, 1, UPLOADER) == "cheque_decreasing"
    # What the node served is exactly what it holds a persisted cheque for.
    latest = node.book.latest(cid)
    assert latest is not None and node.served == 2000 == latest.free_bytes + latest.paid_bytes


def test_settling_pays_node_and_uploader_exactly(tmp_path: Path) -> None:
    chain, book, cid = _channel(tmp_path, deposit=3000)
    node = FakeNode(chain, cid, room=1000)
    assert node.get(book.pay(cid, 0, 1000, 0).raw, 1000, UPLOADER) is None
    assert node.get(book.pay(cid, 2000, 0, 2000, UPLOADER).raw, 2000, UPLOADER) is None
    minted = chain.replay().state.supply.minted
    chain.submit(node.book.settle_tx(NODE, 0, 1, cid, close=True))
    chain.seal()
    assert chain.account(UPLOADER).balance == 400  # 20 % of the 2000 paid
    assert chain.account(address_of(NODE.public_key)).balance == 1000 + 1600 - 1
    assert chain.account(PAYER_ADDR).balance == 10**6 - 1 - 3000 + 1000  # the unspent deposit came back
    r = chain.replay()
    r.check_supply()
    assert r.state.supply.minted == minted


