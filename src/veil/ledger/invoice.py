"""Invoices and ``veil:pay`` payment URIs (docs/specs/invoices.md): the format, its checksum, and
what an invoice's payments add up to. No I/O: the book is client/invoices.py.

URI (version 1; parameters in this order when written, any order when read)::

    veil:pay?v=1&to=<vb1 address>&amount=<smallest units>[&memo=<percent-encoded UTF-8>]
            &inv=<base32 16-byte invoice id>&exp=<unix seconds>&c=<base32 8-byte checksum>

``c = H("veil/pay-uri-checksum/v1", canonical CBOR {v, to: 32 bytes, amount, inv, exp[, memo]})[:8]``.
A reader refuses an unknown scheme or version, a missing, repeated or unknown parameter, a bad
address (which has its own checksum), amount, id or expiry, and any URI whose checksum does not
match its fields: a URI altered on its way is refused by every wallet.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import UsageError
from veil.format import cbor
from veil.format.base32 import b32decode, b32encode
from veil.ledger.address import AddressError, decode_address, encode_address
from veil.ledger.amount import MAX_AMOUNT
from veil.ledger.tx import INVOICE_ID_SIZE, MAX_EXPIRY, MAX_MEMO

PREFIX = "veil:pay?"
VERSION = 1
CHECK_SIZE = 8
MAX_URI = 2048
_H = TaggedHash(labels.PAY_URI_CHECKSUM)
_KEYS = ("v", "to", "amount", "memo", "inv", "exp", "c")
_REQUIRED = frozenset(_KEYS) - {"memo"}

OPEN, PAID, UNDERPAID, OVERPAID, EXPIRED = "open", "paid", "underpaid", "overpaid", "expired"


class PaymentUriError(UsageError):
    """That payment request cannot be used: it is garbled, altered, or of an unknown version.
    Ask the payee for it again (copy it whole, or scan its QR code)."""


@dataclass(frozen=True)
class PaymentRequest:
    payee: bytes
    amount: int
    invoice: bytes
    expires: int
    memo: str | None = None

    def __post_init__(self) -> None:
        if len(self.payee) != 32 or len(self.invoice) != INVOICE_ID_SIZE:
            raise ValueError("payee is 32 bytes, invoice id 16")
        if not 0 < self.amount <= MAX_AMOUNT or not 0 < self.expires <= MAX_EXPIRY:
            raise ValueError("amount or expiry out of range")
        if self.memo is not None and (not self.memo or len(self.memo) > MAX_MEMO):
            raise ValueError(f"memo must be 1..{MAX_MEMO} characters")

    def checksum(self) -> bytes:
        fields: dict[str, object] = {"v": VERSION, "to": self.payee, "amount": self.amount, "inv": self.invoice,
                                     "exp": self.expires}  # fmt: skip
        if self.memo is not None:
            fields["memo"] = self.memo
        return _H(cbor.encode(fields))[:CHECK_SIZE]

    @property
    def invoice_text(self) -> str:
        return b32encode(self.invoice)

    def uri(self) -> str:
        memo = f"&memo={quote(self.memo, safe='')}" if self.memo is not None else ""
        return (f"{PREFIX}v={VERSION}&to={encode_address(self.payee)}&amount={self.amount}{memo}"
                f"&inv={self.invoice_text}&exp={self.expires}&c={b32encode(self.checksum())}")  # fmt: skip

    def expired(self, now: float) -> bool:
        return now > self.expires


def _uint(text: str, what: str, hi: int) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20 or (len(text) > 1 and text[0] == "0"):
        raise PaymentUriError(f"payment request: {what} is not a whole number: {text[:30]!r}")
    v = int(text)
    if not 0 < v <= hi:
        raise PaymentUriError(f"payment request: {what} {v} is out of range")
    return v


def parse_payment_uri(text: str) -> PaymentRequest:
    """The request a ``veil:pay`` URI carries; PaymentUriError (one clear line) on any fault."""
    s = text.strip()
    if len(s) > MAX_URI:
        raise PaymentUriError(f"payment request is {len(s)} characters, over {MAX_URI}")
    if not s.startswith(PREFIX):
        raise PaymentUriError(f"not a Veil payment request (it must start with {PREFIX!r}): {s[:40]!r}")
    got: dict[str, str] = {}
    for part in s[len(PREFIX):].split("&"):
        key, eq, value = part.partition("=")
        if not eq or key not in _KEYS:
            raise PaymentUriError(f"payment request: unknown part {part[:30]!r}")
        if key in got:
            raise PaymentUriError(f"payment request: {key!r} given twice")
        got[key] = value
    if got.get("v") != str(VERSION):
        raise PaymentUriError(f"payment request version {got.get('v', '?')[:8]!r} is not supported (this wallet reads v={VERSION})")
    missing = _REQUIRED - got.keys()
    if missing:
        raise PaymentUriError(f"payment request is missing {', '.join(sorted(missing))} (was it cut short?)")
    try:
        payee = decode_address(got["to"])
    except AddressError as e:
        raise PaymentUriError(f"payment request: {e}") from e
    amount = _uint(got["amount"], "amount", MAX_AMOUNT)
    expires = _uint(got["exp"], "expiry", MAX_EXPIRY)
    memo = None
    if "memo" in got:
        try:
            memo = unquote(got["memo"], errors="strict")
        except UnicodeDecodeError as e:
            raise PaymentUriError("payment request: memo is not UTF-8") from e
        if quote(memo, safe="") != got["memo"]:
            raise PaymentUriError("payment request: memo is not in its one percent-encoded spelling")
        if not memo or len(memo) > MAX_MEMO:
            raise PaymentUriError(f"payment request: memo must be 1..{MAX_MEMO} characters")
    try:
        inv, check = b32decode(got["inv"]), b32decode(got["c"])
    except ValueError as e:
        raise PaymentUriError("payment request: garbled invoice id or checksum") from e
    if len(inv) != INVOICE_ID_SIZE or len(check) != CHECK_SIZE:
        raise PaymentUriError("payment request: garbled invoice id or checksum")
    req = PaymentRequest(payee, amount, inv, expires, memo)
    if req.checksum() != check:
        raise PaymentUriError("payment request was altered (its checksum does not match): ask the payee for it again")
    return req


@dataclass(frozen=True)
class Payment:
    """A transfer on the ledger that names an invoice: who, how much, when (its block's time)."""

    txid: bytes
    sender: bytes
    amount: int
    height: int
    time: int


@dataclass(frozen=True)
class Settlement:
    status: str  # open | paid | underpaid | overpaid | expired
    received: int  # paid before the expiry
    late: int  # paid after the expiry
    credit: int  # owed back to payers: overpayment, late payments, an underpayment once expired
    payments: tuple[Payment, ...]

    @property
    def kept(self) -> int:
        """What the payee keeps against the invoice (``kept + credit`` is everything paid to it)."""
        return self.received + self.late - self.credit


def settle(amount: int, expires: int, payments: list[Payment], now: float) -> Settlement:
    """An invoice's state from the payments naming it (each counted once, by transaction id).

    Before the expiry: nothing yet → open; less than the amount → underpaid (the payer may pay the
    rest); exactly → paid; more → overpaid (the excess is credit). A payment in a block later than
    the expiry is late: all of it is credit. Once expired, an underpaid invoice's payments are
    credit too. Nothing paid is ever lost from the books: ``kept + credit`` = all received.
    """
    seen: dict[bytes, Payment] = {}
    for p in payments:
        seen.setdefault(p.txid, p)
    ps = tuple(sorted(seen.values(), key=lambda p: (p.height, p.txid)))
    on_time = sum(p.amount for p in ps if p.time <= expires)
    late = sum(p.amount for p in ps if p.time > expires)
    over = now > expires
    if on_time == 0:
        status, credit = (EXPIRED if over else OPEN), late
    elif on_time < amount:
        status, credit = UNDERPAID, late + (on_time if over else 0)
    elif on_time == amount:
        status, credit = PAID, late
    else:
        status, credit = OVERPAID, on_time - amount + late
    return Settlement(status, on_time, late, credit, ps)
