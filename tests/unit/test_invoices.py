"""Invoices and veil:pay URIs (ledger/invoice.py, client/invoices.py; docs/specs/invoices.md):
round trips and alterations, every settlement outcome, the payee's book, and — on the in-memory
chain with the validator's own rules — supply conserved and nothing lost from the books across any
sequence of invoice payments, late payments, double payments, under- and overpayments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.client.invoices import InvoiceBook
from veil.crypto.sign import SigningKey
from veil.errors import NotFoundError, UsageError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.invoice import (
    EXPIRED,
    OPEN,
    OVERPAID,
    PAID,
    UNDERPAID,
    Payment,
    PaymentRequest,
    PaymentUriError,
    parse_payment_uri,
    settle,
)
from veil.ledger.params import Params
from veil.testing.ledger import MemoryChain

PAYEE = address_of(SigningKey(bytes([9]) * 32).public_key)
requests = st.builds(
    PaymentRequest,
    payee=st.binary(min_size=32, max_size=32),
    amount=st.integers(1, 2**63 - 1),
    invoice=st.binary(min_size=16, max_size=16),
    expires=st.integers(1, T.MAX_EXPIRY),
    memo=st.none() | st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=T.MAX_MEMO),
)


@given(requests)
def test_uri_round_trip(req: PaymentRequest) -> None:
    assert parse_payment_uri(req.uri()) == req
    assert parse_payment_uri("  " + req.uri() + "\n") == req


@given(requests, st.data())
def test_an_altered_uri_is_refused_or_means_the_same(req: PaymentRequest, data: st.DataObject) -> None:
    uri = req.uri()
    i = data.draw(st.integers(len("veil:pay?"), len(uri) - 1))
    c = data.draw(st.sampled_from("abcxyz0123456789%&=._-ABCZ"))
    altered = uri[:i] + c + uri[i + 1:]
    if altered == uri:
        return
    try:
        got = parse_payment_uri(altered)
    except PaymentUriError:
        return
    assert got == req  # only a change of letter case in a base32 field can mean the same request


def test_refusals_are_one_clear_line() -> None:
    req = PaymentRequest(PAYEE, 5 * 10**9, bytes(16), 2_000_000_000, "order 1234")
    uri = req.uri()
    for bad, words in ((uri.replace("amount=5000000000", "amount=6000000000"), "altered"),
                       (uri.replace("v=1", "v=9"), "not supported"), ("https://example.com/", "not a Veil payment"),
                       (uri.split("&c=")[0], "missing c"), (uri + "&c=aaaaaaaaaaaaa", "twice"),
                       (uri.replace("to=vb1", "to=vb2"), "address"), ("veil:pay?" + "x" * 3000, "over")):  # fmt: skip
        with pytest.raises(PaymentUriError, match=words) as e:
            parse_payment_uri(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError):
        PaymentRequest(PAYEE, 0, bytes(16), 1)


def _p(n: int, amount: int, time: int) -> Payment:
    return Payment(bytes([n]) * 32, bytes(32), amount, n, time)


@pytest.mark.parametrize(("payments", "now", "status", "received", "late", "credit"), [
    ([], 50, OPEN, 0, 0, 0),
    ([], 150, EXPIRED, 0, 0, 0),
    ([_p(1, 100, 10)], 50, PAID, 100, 0, 0),
    ([_p(1, 100, 10), _p(1, 100, 10)], 50, PAID, 100, 0, 0),  # the same transaction seen twice counts once
    ([_p(1, 60, 10)], 50, UNDERPAID, 60, 0, 0),  # the payer may still pay the rest
    ([_p(1, 60, 10), _p(2, 40, 20)], 50, PAID, 100, 0, 0),
    ([_p(1, 60, 10)], 150, UNDERPAID, 60, 0, 60),  # expired underpaid: all of it is owed back
    ([_p(1, 100, 10), _p(2, 100, 20)], 50, OVERPAID, 200, 0, 100),  # a double payment: one is credit
    ([_p(1, 130, 10)], 50, OVERPAID, 130, 0, 30),
    ([_p(1, 100, 101)], 150, EXPIRED, 0, 100, 100),  # a late payment is credit
    ([_p(1, 100, 100), _p(2, 5, 101)], 150, PAID, 100, 5, 5),  # a block at the expiry second is on time
])  # fmt: skip
def test_every_outcome_is_defined(payments: list[Payment], now: int, status: str, received: int, late: int,
                                  credit: int) -> None:  # fmt: skip
    s = settle(100, 100, payments, now)
    assert (s.status, s.received, s.late, s.credit) == (status, received, late, credit)
    assert s.kept + s.credit == sum({p.txid: p.amount for p in payments}.values())


def test_the_book_keeps_invoices(tmp_path: Path) -> None:
    now = [1_000_000.0]
    book = InvoiceBook(tmp_path / "w.invoices", clock=lambda: now[0])
    a, created = book.create(PAYEE, 5, "one", 3600)
    assert created == 1_000_000 and a.expires == 1_003_600
    now[0] += 1
    b, _ = book.create(PAYEE, 7, None, 60)
    with pytest.raises(UsageError):
        book.create(PAYEE, 7, None, 0)
    with pytest.raises(UsageError):
        book.create(PAYEE, 7, "x" * (T.MAX_MEMO + 1), 60)
    book.close()
    again = InvoiceBook(tmp_path / "w.invoices")
    assert [r for r, _ in again.all()] == [b, a]  # newest first, and kept across a reopen
    assert again.get(a.invoice_text[:10].upper())[0] == a
    with pytest.raises(NotFoundError):
        again.get("zzzz")
    with pytest.raises((NotFoundError, UsageError)):
        again.get("")
    assert (tmp_path / "w.invoices").stat().st_mode & 0o777 == 0o600
    again.close()


KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(3)]
PAYEE_KEY = SigningKey(bytes([99]) * 32)
PARAMS = Params(chain_id="unit-invoices")
ops = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from([1, 2, 3, 4, 6]), st.integers(0, 40)),
               min_size=1, max_size=14)  # (payer, invoice, amount in quarters of the price, seconds later)


@given(ops)
def test_supply_is_conserved_and_nothing_is_lost_from_the_books(steps: list[tuple[int, int, int, int]]) -> None:
    payee = address_of(PAYEE_KEY.public_key)
    start = 1_000_000
    chain = MemoryChain.create(PARAMS, {address_of(k.public_key): 10**6 for k in KEYS}, pool=10**9, start=start)
    price = 400
    invoices = [PaymentRequest(payee, price, bytes([i]) * 16, start + 60 * (i + 1), f"order {i}") for i in range(3)]
    nonces = [0, 0, 0]
    paid: dict[bytes, list[Payment]] = {r.invoice: [] for r in invoices}
    for payer, which, quarters, wait in steps:
        chain.now += wait
        req, key = invoices[which], KEYS[payer]
        raw = T.transfer(key, chain.genesis.chain, nonces[payer], PARAMS.min_fee, payee, price * quarters // 4,
                         req.memo, req.invoice)  # fmt: skip
        tx = chain.submit(raw)
        nonces[payer] += 1
        chain.seal()
        assert tx.invoice == req.invoice
        paid[req.invoice].append(Payment(tx.txid, tx.sender, tx.amount, len(chain.blocks), chain.now))
    chain.replay().check_supply()
    total = sum(p.amount for ps in paid.values() for p in ps)
    assert chain.account(payee).balance == total
    for req in invoices:
        s = settle(req.amount, req.expires, paid[req.invoice], chain.now)
        assert s.kept + s.credit == sum(p.amount for p in paid[req.invoice])
        assert s.kept <= req.amount and s.credit >= 0
        assert (s.status == PAID) == (s.received == req.amount)
