"""Pay as you download (docs/specs/payments.md): the wire pieces and the pure decisions.

No I/O here. The node's payment gate (node/payment_gate.py) and the client's payer
(client/payer.py) both lean on these functions, so the rules a node applies and the
cheques a client signs are computed by the same code.

Wire:
  GET  /v1/pay/terms                    -> CBOR Terms (also in GET /v1/node, storage role)
  GET  /v1/shares/{si}/{shnum}?m&start&count
       header ``Veil-Cheque: <base64url cheque>`` pays for the blocks asked for
       402 -> CBOR {"error": code, "message": text, "terms": Terms}

A request is *prepaid*: its cheque must raise the channel's cumulative cover by at least
the block bytes asked for. A node persists the cheque before it sends a byte, so neither
side is ever exposed to more than one request (the credit unit).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from veil.crypto.sign import PUBLIC_KEY_SIZE, node_id
from veil.errors import IntegrityError
from veil.format.fields import get_bytes, get_int, get_str, require_map
from veil.ledger.address import ADDRESS_SIZE, address_of
from veil.ledger.cheque import Cheque, Settled
from veil.ledger.params import GB

CHEQUE_HEADER = "Veil-Cheque"
MAX_CHEQUE_HEADER = 8192

# 402 codes: what the client must do before asking again.
PAYMENT_REQUIRED = "payment_required"  # no cheque: this node charges; open (or reuse) a channel
CHANNEL_NEEDED = "channel_needed"  # unknown, expired or closing channel, or one to another payee
DEPOSIT_EXHAUSTED = "deposit_exhausted"  # the cheque would pay more than the deposit: top up
ALLOWANCE_SPENT = "allowance_spent"  # free bytes were not honoured: pay the rest from the deposit
UNDERPAID = "underpaid"  # the cheque covers fewer bytes or less money than the request needs
STALE = "stale_cheque"  # another cheque of this channel was accepted first: sign a new one
BAD_UPLOADER = "bad_uploader"  # the uploader reward is owed to the file's payout address
CODES = frozenset({PAYMENT_REQUIRED, CHANNEL_NEEDED, DEPOSIT_EXHAUSTED, ALLOWANCE_SPENT, UNDERPAID, STALE, BAD_UPLOADER})


@dataclass(frozen=True)
class Terms:
    """What a charging node advertises: who to pay, how much, how much free credit it extends."""

    payee: bytes  # ledger address the channel must pay (the node's identity key's address)
    chain: str
    price_per_gb: int  # units per 10^9 paid bytes served (the uploader's share comes out of it)
    lease_price_per_gb_day: int  # units per 10^9 bytes kept for one day (leases)
    free_credit: int  # free-tier bytes the node accepts per payer before it settles them
    min_life: int  # seconds a channel must still have before expiry to be accepted
    key: bytes = b""  # the node's Ed25519 public key: payee and the pinned node id both derive from it

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, value: Any) -> Terms:
        w = "payment terms"
        m = require_map(value, w, set(cls.__dataclass_fields__))
        return cls(
            payee=get_bytes(m, "payee", w, ADDRESS_SIZE),
            chain=get_str(m, "chain", w, 64),
            price_per_gb=get_int(m, "price_per_gb", w),
            lease_price_per_gb_day=get_int(m, "lease_price_per_gb_day", w),
            free_credit=get_int(m, "free_credit", w),
            min_life=get_int(m, "min_life", w, 0, 2**40),
            key=get_bytes(m, "key", w, PUBLIC_KEY_SIZE),
        )


class ForeignPayeeError(IntegrityError):
    """The node asked to be paid at an address that is not its own key's: it was not paid."""


def check_terms(terms: Terms, pinned_node_id: bytes) -> Terms:
    """Terms are believed only if they belong to the node we are talking to: its key must be
    the one the TLS pin checked (node id = SHA-256 of the key) and the payee that key's address.
    Otherwise a node could get another node paid, audited and failed in its place (issue 19 item 2)."""
    if node_id(terms.key) != pinned_node_id:
        raise ForeignPayeeError("the node's payment terms name another node's key")
    if address_of(terms.key) != terms.payee:
        raise ForeignPayeeError("the node asks to be paid at an address that is not its own key's")
    return terms


def encode_cheque_header(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cheque_header(text: str) -> bytes:
    if len(text) > MAX_CHEQUE_HEADER:
        raise IntegrityError("cheque header too large")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise IntegrityError("cheque header is not base64url") from e


def refusal(code: str, message: str, terms: Terms | None) -> dict[str, Any]:
    """The CBOR body of a 402."""
    body: dict[str, Any] = {"error": code, "message": message}
    if terms is not None:
        body["terms"] = terms.to_wire()
    return body


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    terms: Terms | None


def parse_refusal(value: Any) -> Refusal:
    w = "payment refusal"
    m = require_map(value, w, {"error", "message", "terms"})
    code = get_str(m, "error", w, 64)
    terms = Terms.from_wire(m["terms"]) if m.get("terms") is not None else None
    return Refusal(code, get_str(m, "message", w, 1000), terms)


# -- money ---------------------------------------------------------------------------------


def paid_cost(paid_bytes: int, price_per_gb: int) -> int:
    """What ``paid_bytes`` cumulative paid bytes cost at ``price_per_gb`` (rounded up: the
    payer rounds in the node's favour, so the node's floor check below always passes)."""
    return -(-paid_bytes * price_per_gb // GB)


def min_payment(paid_delta: int, price_per_gb: int) -> int:
    """The least a cheque must add for ``paid_delta`` more paid bytes (rounded down)."""
    return paid_delta * price_per_gb // GB


def lease_cost(nbytes: int, days: int, price_per_gb_day: int) -> int:
    return -(-nbytes * days * price_per_gb_day // GB)


# -- the node's decision --------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """The node's verdict on one prepaid request. ``code`` None: accept and serve."""

    code: str | None
    message: str = ""
    honoured_free: int = 0  # free bytes of this cheque the node counts toward the request
    paid_bytes: int = 0


def judge(
    base: Settled,
    c: Cheque,
    nbytes: int,
    price_per_gb: int,
    free_room: int,
    payer: bytes,
    payout: bytes | None,
) -> Judgement:
    """Does cheque ``c`` (a valid successor of ``base``) pay for ``nbytes`` of blocks?

    ``free_room``: free-tier bytes this node will still take from the payer before settling
    (its free credit, capped by the payer's allowance as the ledger last reported it).
    ``payout``: the file's uploader address from its manifest. The rules:
    - cover: honoured free bytes + new paid bytes >= nbytes;
    - money: new amount >= the new paid bytes at the node's price (rounded down);
    - uploader: all new money is attributed to the file's payout address (unless the
      payer is that address, or the file names none), and to no one else.
    """
    d_free = c.free_bytes - base.free_bytes
    d_paid = c.paid_bytes - base.paid_bytes
    d_amount = c.amount - base.amount
    honoured = min(d_free, max(0, free_room))
    if honoured + d_paid < nbytes:
        if d_free > honoured:
            return Judgement(
                ALLOWANCE_SPENT,
                f"this node takes no more free bytes from you now ({max(0, free_room)} left of its free credit or "
                f"your allowance); pay for {nbytes - honoured - max(0, d_paid)} bytes from the deposit",
            )
        return Judgement(UNDERPAID, f"the cheque covers {honoured + d_paid} of the {nbytes} bytes asked for")
    need = min_payment(d_paid, price_per_gb)
    if d_amount < need:
        return Judgement(UNDERPAID, f"{d_paid} paid bytes cost {need} units here; the cheque adds {d_amount}")
    before = dict(base.uploaders)
    raised = {a: v - before.get(a, 0) for a, v in c.uploaders if v != before.get(a, 0)}
    want_reward = payout is not None and payout != payer
    if want_reward:
        assert payout is not None
        if set(raised) - {payout} or raised.get(payout, 0) != d_amount:
            return Judgement(BAD_UPLOADER, "the whole new amount must be attributed to the file's payout address")
    elif raised:
        return Judgement(BAD_UPLOADER, "this file names no uploader to reward (or you uploaded it yourself)")
    return Judgement(None, honoured_free=honoured, paid_bytes=d_paid)


# -- the client's per-node machine -------------------------------------------------------------


class PayState(Enum):
    """Where the client stands with one node (drawn in docs/specs/payments.md)."""

    UNKNOWN = "unknown"  # nothing asked yet: the first request goes without a cheque
    FREE = "free"  # the node served without payment: it does not charge
    NEED_CHANNEL = "need_channel"  # the node charges; find, open or replace a channel
    NEED_TOPUP = "need_topup"  # the channel's deposit does not cover the next cheque
    PAYING = "paying"  # a channel is in place: every request carries a cheque
    STOPPED = "stopped"  # no wallet, spending limit reached, or too many refusals


class PayEvent(Enum):
    SERVED = "served"  # 200
    REFUSED_PAYMENT_REQUIRED = PAYMENT_REQUIRED
    REFUSED_CHANNEL = CHANNEL_NEEDED
    REFUSED_DEPOSIT = DEPOSIT_EXHAUSTED
    REFUSED_ALLOWANCE = ALLOWANCE_SPENT
    REFUSED_RETRY = "retry"  # underpaid or stale: sign a fresh cheque
    CHANNEL_READY = "channel_ready"
    LIMIT = "limit"  # the next cheque would pass --max-spend, or there is no wallet


_TABLE: dict[tuple[PayState, PayEvent], PayState] = {
    (PayState.UNKNOWN, PayEvent.SERVED): PayState.FREE,
    (PayState.FREE, PayEvent.SERVED): PayState.FREE,
    (PayState.PAYING, PayEvent.SERVED): PayState.PAYING,
    (PayState.PAYING, PayEvent.REFUSED_RETRY): PayState.PAYING,
    (PayState.PAYING, PayEvent.REFUSED_ALLOWANCE): PayState.PAYING,
    (PayState.NEED_CHANNEL, PayEvent.CHANNEL_READY): PayState.PAYING,
    (PayState.NEED_TOPUP, PayEvent.CHANNEL_READY): PayState.PAYING,
}
for _s in (PayState.UNKNOWN, PayState.FREE, PayState.PAYING):
    _TABLE[(_s, PayEvent.REFUSED_PAYMENT_REQUIRED)] = PayState.NEED_CHANNEL
    _TABLE[(_s, PayEvent.REFUSED_CHANNEL)] = PayState.NEED_CHANNEL
    _TABLE[(_s, PayEvent.REFUSED_DEPOSIT)] = PayState.NEED_TOPUP
for _s in PayState:
    _TABLE[(_s, PayEvent.LIMIT)] = PayState.STOPPED


class PayProtocolError(IntegrityError):
    """A node's payment answers do not follow the protocol."""


def step(state: PayState, event: PayEvent) -> PayState:
    """The next state; PayProtocolError for a transition the protocol does not have."""
    nxt = _TABLE.get((state, event))
    if nxt is None:
        raise PayProtocolError(f"payment protocol: {event.value} is not expected in state {state.value}")
    return nxt


def event_for(code: str) -> PayEvent:
    if code in (UNDERPAID, STALE, BAD_UPLOADER):
        return PayEvent.REFUSED_RETRY
    try:
        return PayEvent(code)
    except ValueError:
        raise PayProtocolError(f"unknown payment refusal {code[:40]!r}") from None
