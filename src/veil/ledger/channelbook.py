"""A node's (payee's) book of payment channels: checks each incoming cheque in microseconds
and persists the latest one *before* the caller acknowledges it or serves what it pays for.

The book is pure apart from the injected ``ChequeStore`` (SQLite in a node, a dict in tests
and simulations). What the book knows of each channel (payer key, deposit, expiry) comes
from the ledger via ``track``; the rules are the same ``cheque.check_successor`` the ledger
applies at settlement, so a cheque the book accepts is one the ledger will honour, as long
as the node settles before the channel's expiry plus the challenge window.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.cheque import Cheque, Settled, Settlement, check_successor, decode_cheque
from veil.ledger.close_consent import sign_consent
from veil.ledger.params import Params
from veil.ledger.state import OPEN, Channel


class ChequeStore(Protocol):
    def save(self, channel: bytes, cheque: bytes) -> None:
        """Durably record ``cheque`` as the latest for ``channel`` (on disk when it returns)."""

    def load(self) -> Iterable[tuple[bytes, bytes]]:
        """Every (channel, latest cheque) recorded."""

    def forget(self, channel: bytes) -> None:
        """Drop a channel that has been settled and closed."""

    def mark_closing(self, channel: bytes) -> None:
        """Durably record that the node consented to close ``channel`` (it takes no more cheques)."""

    def closing(self) -> set[bytes]:
        """Every channel marked closing."""


class MemoryChequeStore:
    def __init__(self) -> None:
        self.latest: dict[bytes, bytes] = {}
        self.closed: set[bytes] = set()

    def mark_closing(self, channel: bytes) -> None:
        self.closed.add(channel)

    def closing(self) -> set[bytes]:
        return set(self.closed)

    def save(self, channel: bytes, cheque: bytes) -> None:
        self.latest[channel] = cheque

    def load(self) -> Iterable[tuple[bytes, bytes]]:
        return list(self.latest.items())

    def forget(self, channel: bytes) -> None:
        self.latest.pop(channel, None)
        self.closed.discard(channel)


class Receipt(NamedTuple):
    cheque: Cheque
    delta: Settlement  # what this cheque adds over the previous accepted one


@dataclass
class _Entry:
    channel: Channel
    accepted: Settled  # the latest accepted cheque (or what the ledger has settled)
    latest: Cheque | None = None


class ChannelBook:
    """Thread-safe; ``accept`` is the hot path (one signature check, one store write)."""

    def __init__(self, params: Params, payee: bytes, store: ChequeStore, expiry_margin: int = 0) -> None:
        self.params = params
        self.payee = payee
        self.store = store
        # Refuse cheques this close to expiry: the node needs time to get its settlement in.
        self.expiry_margin = expiry_margin
        self._entries: dict[bytes, _Entry] = {}
        self._pending: dict[bytes, Cheque] = {}
        self._lock = threading.Lock()
        for cid, raw in store.load():
            self._pending[cid] = decode_cheque(raw)
        self._closing = store.closing()  # channels this node consented to close: no more cheques

    def track(self, cid: bytes, channel: Channel) -> None:
        """Learn (or refresh, after a top-up or settlement) a channel from the ledger."""
        if channel.payee != self.payee:
            raise LedgerError("that channel pays another node", "not_channel_party")
        with self._lock:
            e = self._entries.get(cid)
            on_ledger = channel.settled()
            if e is None:
                e = _Entry(channel, on_ledger, self._pending.pop(cid, None))
                if e.latest is not None and e.latest.seq > on_ledger.seq:
                    e.accepted = Settled.of(e.latest)
                else:
                    e.latest = None
                self._entries[cid] = e
            else:
                e.channel = channel
                if on_ledger.seq > e.accepted.seq:
                    e.accepted, e.latest = on_ledger, None

    def forget(self, cid: bytes) -> None:
        with self._lock:
            self._entries.pop(cid, None)
            self._closing.discard(cid)
        self.store.forget(cid)

    def accept(self, raw: bytes, now: int) -> Receipt:
        """Check a cheque and persist it as the channel's latest; LedgerError if it fails a rule.

        The signature is checked outside the lock, so concurrent downloads verify on every
        core; the rules are checked again under the lock in case another cheque won meanwhile.
        """
        c = decode_cheque(raw)
        payer_pub = self._known(c, now).payer_pub  # no signature work for unknown or closed channels
        c.verify(payer_pub)
        with self._lock:
            e = self._entries.get(c.channel)
            if e is None or e.channel.payer_pub != payer_pub:
                raise LedgerError("cheque for a channel this node does not know", "unknown_channel")
            delta = self._successor(e, c, now)
            self.store.save(c.channel, raw)
            e.accepted, e.latest = Settled.of(c), c
            return Receipt(c, delta)

    def _known(self, c: Cheque, now: int) -> Channel:
        """The open channel a cheque names; the cheap checks that come before its signature."""
        with self._lock:
            e = self._entries.get(c.channel)
            if e is None:
                raise LedgerError("cheque for a channel this node does not know", "unknown_channel")
            ch = e.channel
            if ch.status != OPEN or now + self.expiry_margin >= ch.expires or c.channel in self._closing:
                raise LedgerError("the channel is expired or closing; open a new one", "channel_expired")
            if c.seq <= e.accepted.seq:
                raise LedgerError(f"cheque sequence {c.seq} is not above the last accepted {e.accepted.seq}", "stale_cheque")
            return ch

    def _successor(self, e: _Entry, c: Cheque, now: int) -> Settlement:
        ch = e.channel
        if ch.status != OPEN or now + self.expiry_margin >= ch.expires or c.channel in self._closing:
            raise LedgerError("the channel is expired or closing; open a new one", "channel_expired")
        return check_successor(
            e.accepted,
            c,
            chain=self.params.chain_id,
            channel=c.channel,
            payer=ch.payer,
            total_deposit=ch.total_deposit,
            params=self.params,
        )

    def consent_close(self, key: SigningKey, cid: bytes) -> tuple[Cheque | None, bytes]:
        """The payee's consent to a payer's cooperative close at the latest accepted cheque
        (close_consent.py): from now on the book refuses every cheque on the channel (durably),
        so the payer cannot close at this cheque after being served more."""
        with self._lock:
            e = self._entries.get(cid)
            if e is None:
                raise LedgerError("this node does not know that channel", "unknown_channel")
            self.store.mark_closing(cid)
            self._closing.add(cid)
            latest = e.latest if e.latest is not None and e.latest.seq > e.channel.seq else None
            seq = latest.seq if latest is not None else e.channel.seq
        sig = sign_consent(key, self.params.chain_id, cid, seq, latest.raw if latest is not None else None)
        return latest, sig

    def latest(self, cid: bytes) -> Cheque | None:
        with self._lock:
            e = self._entries.get(cid)
            return None if e is None else e.latest

    def channel(self, cid: bytes) -> Channel | None:
        with self._lock:
            e = self._entries.get(cid)
            return None if e is None else e.channel

    def unsettled(self) -> list[tuple[bytes, Cheque]]:
        """Channels holding a cheque newer than what the ledger has settled."""
        with self._lock:
            return [(cid, e.latest) for cid, e in self._entries.items() if e.latest is not None]

    def settle_tx(self, key: SigningKey, nonce: int, fee: int, cid: bytes, close: bool) -> bytes:
        """The payee's channel_settle transaction carrying the latest cheque (if any)."""
        return txm.channel_settle(key, self.params.chain_id, nonce, fee, cid, self.latest(cid), close)
