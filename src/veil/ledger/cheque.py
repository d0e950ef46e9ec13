"""Cheques: off-ledger, cumulative, payer-signed promises inside a payment channel.

A downloader (payer) sends a node (payee) a fresh cheque per block fetched. Each cheque
restates the channel's running totals, so only the latest matters and a lost cheque costs
nothing. A cheque says how its bytes split into *free* (charged at settlement against the
payer's allowance for the epoch, paid to the node from the allowance pool) and *paid*
(paid from the deposit), and which uploaders the paid money is owed to: ``uploaders`` lists
``(payout address, cumulative paid amount for that uploader's files)``, and on settlement
each uploader receives ``uploader_share_bp`` of its amount. Nothing free ever reaches an
uploader, and a payer may not name itself.

Wire: unlike transactions and blocks (CBOR envelopes), a cheque has a fixed binary layout,
because a node decodes one per block range it serves and CBOR decoding cost more than a
quarter of the signature check (docs/specs/ledger.md, "Cheques")::

    "VLCQ" | version u8 = 1 | chain_len u8 | chain (UTF-8, 1..64) | channel (32)
    | seq u64 | amount u64 | free_bytes u64 | paid_bytes u64 | n u16
    | n x (uploader address (32) | amount u64) | signature (64)

Integers are big-endian and at most 2^63-1; seq >= 1; uploaders sorted by address, no
duplicates, amounts > 0, their sum <= amount. The signature covers every byte before it,
prefixed with the label ``veil/cheque-sig/v1``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from veil.crypto import labels
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger.envelope import sig_prefix
from veil.ledger.params import Params

MAGIC = b"VLCQ"
VERSION = 1
MAX_CHEQUE_SIZE = 6144
MAX_UPLOADERS = 1024
_SIG_PREFIX = sig_prefix(labels.CHEQUE_SIG)
_MAX_U63 = 2**63 - 1
_HEAD = struct.Struct(">4sBB")  # magic, version, chain length
_FIXED = struct.Struct(">32sQQQQH")  # channel, seq, amount, free_bytes, paid_bytes, uploaders
_UPLOADER = struct.Struct(">32sQ")
_SIG = 64


class Cheque(NamedTuple):
    """A decoded cheque (immutable; a NamedTuple because nodes decode one per block fetched)."""

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
    cb = chain.encode()
    if not 0 < len(cb) <= 64 or len(channel) != 32 or len(ups) > MAX_UPLOADERS:
        raise LedgerError("cheque: bad chain, channel or uploader count", "malformed")
    try:
        body = b"".join(
            [_HEAD.pack(MAGIC, VERSION, len(cb)), cb, _FIXED.pack(channel, seq, amount, free_bytes, paid_bytes, len(ups))]
            + [_UPLOADER.pack(a, v) for a, v in ups]
        )
    except struct.error as e:
        raise LedgerError(f"cheque: a field is out of range ({e})", "bad_amount") from e
    return decode_cheque(body + key.sign(_SIG_PREFIX + body))


def decode_cheque(raw: bytes) -> Cheque:
    """Parse and check a cheque's layout and fields (not its signature); LedgerError if malformed."""
    n = len(raw)
    if n > MAX_CHEQUE_SIZE:
        raise LedgerError(f"cheque is {n} bytes, over the {MAX_CHEQUE_SIZE}-byte limit", "oversized")
    if n < _HEAD.size + 1 + _FIXED.size + _SIG:
        raise LedgerError("cheque: too short", "malformed")
    magic, version, clen = _HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise LedgerError("cheque: wrong magic", "malformed")
    if version != VERSION:
        raise LedgerError(f"cheque: version {version} is not supported", "malformed")
    off = _HEAD.size + clen
    if not 0 < clen <= 64 or n < off + _FIXED.size + _SIG:
        raise LedgerError("cheque: bad chain id", "malformed")
    try:
        chain = raw[_HEAD.size : off].decode()
    except UnicodeDecodeError as e:
        raise LedgerError("cheque: chain id is not UTF-8", "malformed") from e
    channel, seq, amount, free_bytes, paid_bytes, nup = _FIXED.unpack_from(raw, off)
    off += _FIXED.size
    if n != off + nup * _UPLOADER.size + _SIG or nup > MAX_UPLOADERS:
        raise LedgerError("cheque: length does not match its uploader count", "malformed")
    if seq < 1 or max(seq, free_bytes, paid_bytes) > _MAX_U63:
        raise LedgerError("cheque: seq must be >= 1 and counters < 2^63", "malformed")
    if amount > _MAX_U63:
        raise LedgerError(f"cheque: amount {amount} is not a valid amount", "bad_amount")
    ups: list[tuple[bytes, int]] = []
    total = 0
    prev = b""
    for _ in range(nup):
        addr, v = _UPLOADER.unpack_from(raw, off)
        off += _UPLOADER.size
        if not 0 < v <= _MAX_U63:
            raise LedgerError("cheque: each uploader is [32-byte address, amount > 0]", "malformed")
        if addr <= prev:
            raise LedgerError("cheque: uploaders must be sorted by address without duplicates", "malformed")
        prev = addr
        total += v
        ups.append((addr, v))
    if total > amount:
        raise LedgerError("cheque: uploader amounts add up to more than the cheque's amount", "bad_cheque")
    return Cheque(raw, raw[:off], raw[off:], chain, channel, seq, amount, free_bytes, paid_bytes, tuple(ups))


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
