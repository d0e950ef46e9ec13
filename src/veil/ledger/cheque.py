"""Cheques: off-ledger, cumulative, payer-signed promises inside a payment channel.

A downloader (payer) sends a node (payee) a fresh cheque per block fetched. Each cheque
restates the channel's running totals, so only the latest matters and a lost cheque costs
nothing. A cheque says how its bytes split into *free* (charged at settlement against the
payer's allowance for the epoch, paid to the node from the allowance pool) and *paid*
(paid from the deposit), and which uploaders the paid money is owed to: ``uploaders`` lists
``(payout address, cumulative paid amount for that uploader's files)``, and on settlement
each uploader receives ``uploader_share_bp`` of its amount. Nothing free ever reaches an
uploader, and a payer may not name itself.

Wire: envelope ``["veil-cheque", 1, body, sig]`` (see envelope.py); body keys: chain,
channel (32 bytes), seq (>= 1), amount, free_bytes, paid_bytes, uploaders
(``[[address, amount], ...]`` sorted by address, no duplicates, amounts > 0, sum <= amount).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from veil.crypto import labels
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger.address import ADDRESS_SIZE
from veil.ledger.envelope import (
    open_envelope,
    seal,
    sig_prefix,
    want_amount,
    want_bytes,
    want_fields,
    want_int,
)
from veil.ledger.params import Params

MAGIC = "veil-cheque"
VERSION = 1
MAX_CHEQUE_SIZE = 6144
MAX_UPLOADERS = 1024
_SIG_PREFIX = sig_prefix(labels.CHEQUE_SIG)
_FIELDS = frozenset({"chain", "channel", "seq", "amount", "free_bytes", "paid_bytes", "uploaders"})
_MAX_U63 = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Cheque:
    raw: bytes
    body: bytes
    sig: bytes
    chain: str
    channel: bytes
    seq: int
    amount: int
    free_bytes: int
    paid_bytes: int
    uploaders: tuple[tuple[bytes, int], ...]

    def verify(self, payer_pub: bytes) -> None:
        """Raise LedgerError ``bad_signature`` unless the payer signed this cheque."""
        if not verify_fast(payer_pub, _SIG_PREFIX + self.body, self.sig):
            raise LedgerError("cheque signature is not the payer's", "bad_signature")


def make_cheque(
    key: SigningKey,
    chain: str,
    channel: bytes,
    seq: int,
    amount: int,
    free_bytes: int = 0,
    paid_bytes: int = 0,
    uploaders: Mapping[bytes, int] | None = None,
) -> Cheque:
    """Sign a cheque (the payer side). The result is checked like any received cheque."""
    ups = sorted((bytes(a), int(v)) for a, v in (uploaders or {}).items() if v)
    body: dict[str, Any] = {
        "chain": chain,
        "channel": channel,
        "seq": seq,
        "amount": amount,
        "free_bytes": free_bytes,
        "paid_bytes": paid_bytes,
        "uploaders": [[a, v] for a, v in ups],
    }
    raw, _, _ = seal(MAGIC, VERSION, body, key, labels.CHEQUE_SIG)
    return decode_cheque(raw)


def decode_cheque(raw: bytes) -> Cheque:
    """Parse and schema-check a cheque (not its signature): LedgerError on anything malformed."""
    what = "cheque"
    m, body, sig = open_envelope(raw, MAGIC, VERSION, MAX_CHEQUE_SIZE, what)
    want_fields(m, what, _FIELDS)
    chain = m["chain"]
    if not isinstance(chain, str) or not 0 < len(chain) <= 64:
        raise LedgerError("cheque: bad chain id", "malformed")
    amount = want_amount(m, "amount", what, allow_zero=True)
    ups_raw = m["uploaders"]
    if not isinstance(ups_raw, list) or len(ups_raw) > MAX_UPLOADERS:
        raise LedgerError(f"cheque: uploaders must be a list of at most {MAX_UPLOADERS}", "malformed")
    ups: list[tuple[bytes, int]] = []
    total = 0
    prev = b""
    for item in ups_raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], bytes)
            or len(item[0]) != ADDRESS_SIZE
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
            or not 0 < item[1] <= _MAX_U63
        ):
            raise LedgerError("cheque: each uploader is [32-byte address, amount > 0]", "malformed")
        if item[0] <= prev:
            raise LedgerError("cheque: uploaders must be sorted by address without duplicates", "malformed")
        prev = item[0]
        total += item[1]
        ups.append((item[0], item[1]))
    if total > amount:
        raise LedgerError("cheque: uploader amounts add up to more than the cheque's amount", "bad_cheque")
    return Cheque(
        raw=raw,
        body=body,
        sig=sig,
        chain=chain,
        channel=want_bytes(m, "channel", what, 32),
        seq=want_int(m, "seq", what, 1),
        amount=amount,
        free_bytes=want_int(m, "free_bytes", what),
        paid_bytes=want_int(m, "paid_bytes", what),
        uploaders=tuple(ups),
    )


class Settled(NamedTuple):
    """What a channel has already settled (or, in a channel book, already accepted)."""

    seq: int = 0
    amount: int = 0
    free_bytes: int = 0
    paid_bytes: int = 0
    uploaders: tuple[tuple[bytes, int], ...] = ()

    @classmethod
    def of(cls, c: Cheque) -> Settled:
        return cls(c.seq, c.amount, c.free_bytes, c.paid_bytes, c.uploaders)


class Settlement(NamedTuple):
    """The money a newer cheque moves beyond ``Settled`` (all deltas, all >= 0)."""

    paid: int  # from the deposit, in total
    to_payee: int  # the payee's part of ``paid``
    to_uploaders: tuple[tuple[bytes, int], ...]  # each uploader's part of ``paid``
    free_bytes: int  # free-tier bytes newly claimed (charged against the payer's allowance)


def uploader_total(ups: Iterable[tuple[bytes, int]], params: Params) -> int:
    return sum(params.uploader_share(v) for _, v in ups)


def check_successor(
    prev: Settled,
    new: Cheque,
    *,
    chain: str,
    channel: bytes,
    payer: bytes,
    total_deposit: int,
    params: Params,
) -> Settlement:
    """The rules every accepted cheque obeys, node-side and on the ledger alike.

    ``total_deposit`` is everything the payer ever locked in the channel. Raises LedgerError:
    ``wrong_chain``, ``unknown_channel``, ``stale_cheque`` (sequence not above the last),
    ``cheque_over_deposit``, ``self_reward``, ``too_many_uploaders``, ``cheque_decreasing``.
    """
    if new.chain != chain:
        raise LedgerError(f"cheque is for chain {new.chain!r}, not {chain!r}", "wrong_chain")
    if new.channel != channel:
        raise LedgerError("cheque is for another channel", "unknown_channel")
    if new.seq <= prev.seq:
        raise LedgerError(f"cheque sequence {new.seq} is not above the last accepted {prev.seq}", "stale_cheque")
    if new.amount > total_deposit:
        raise LedgerError(f"cheque total {new.amount} exceeds the channel deposit {total_deposit}", "cheque_over_deposit")
    if len(new.uploaders) > params.max_cheque_uploaders:
        raise LedgerError(f"cheque names more than {params.max_cheque_uploaders} uploaders", "too_many_uploaders")
    if new.amount < prev.amount or new.free_bytes < prev.free_bytes or new.paid_bytes < prev.paid_bytes:
        raise LedgerError("cheque totals are lower than an earlier cheque's", "cheque_decreasing")
    now = dict(new.uploaders)
    if payer in now:
        raise LedgerError("a payer cannot name itself as uploader", "self_reward")
    to_up: list[tuple[bytes, int]] = []
    for addr, before in prev.uploaders:
        if now.get(addr, 0) < before:
            raise LedgerError("cheque lowers an uploader's total", "cheque_decreasing")
    before_map = dict(prev.uploaders)
    for addr, cum in new.uploaders:
        d = params.uploader_share(cum) - params.uploader_share(before_map.get(addr, 0))
        if d:
            to_up.append((addr, d))
    paid = new.amount - prev.amount
    up_sum = sum(d for _, d in to_up)
    if up_sum > paid:
        raise LedgerError("cheque owes uploaders more than it newly pays", "cheque_decreasing")
    return Settlement(paid, paid - up_sum, tuple(to_up), new.free_bytes - prev.free_bytes)
