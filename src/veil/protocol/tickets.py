"""Storage tickets: an account asks one node to store shares of one file, against its quota.

    header  X-Veil-Storage-Ticket: base64url(CBOR {account, node, si, expires, nonce, sig})
    sig     Ed25519 by ``account`` (the account's public key) over
            "veil/storage-ticket-sig/v1" || CBOR {account, node, si, expires, nonce}

A node whose storage admission policy is ``ticket`` (docs/specs/payments.md, "Storage
admission") takes an upload (``POST /v1/uploads``, one-shot ``PUT /v1/shares/...``) only with a
ticket naming it (``node`` = its node id) and the storage index, not expired and valid for at
most ``MAX_TICKET_LIFE`` seconds, and only while the account's stored bytes on that node stay
within the account's free storage quota on the ledger. A ticket admits one request: the node
keeps ``(account, nonce)`` until the ticket expires and refuses it a second time (a replay).

Imports from: veil.crypto, veil.errors, veil.format.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from veil.crypto import labels
from veil.crypto.sign import SigningKey, verify
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.caps import SI_SIZE
from veil.format.fields import get_bytes, get_int, require_map

TICKET_HEADER = "X-Veil-Storage-Ticket"
MAX_TICKET_LIFE = 24 * 3600
MAX_TICKET_HEADER = 512
NONCE_SIZE = 16


@dataclass(frozen=True)
class StorageTicket:
    account: bytes  # Ed25519 public key of the paying account
    node: bytes  # node id of the node asked to store
    si: bytes
    expires: int  # unix seconds
    nonce: bytes  # random: what makes the ticket single-use
    sig: bytes = b""

    def body(self) -> dict[str, object]:
        return {"account": self.account, "node": self.node, "si": self.si, "expires": self.expires,
                "nonce": self.nonce}  # fmt: skip

    def message(self) -> bytes:
        return labels.STORAGE_TICKET_SIG + cbor.encode(self.body())


def make_ticket(key: SigningKey, node: bytes, si: bytes, expires: int, nonce: bytes | None = None) -> str:
    """The header value of a fresh ticket signed by ``key`` (the client side); every call makes a
    new one (a random nonce), since a node takes each ticket once."""
    t = StorageTicket(key.public_key, node, si, expires, nonce if nonce is not None else os.urandom(NONCE_SIZE))
    raw = cbor.encode({**t.body(), "sig": key.sign(t.message())})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_ticket(text: str) -> StorageTicket:
    """Decode a ticket header and check its signature (IntegrityError if anything is off)."""
    if len(text) > MAX_TICKET_HEADER:
        raise IntegrityError("storage ticket too large")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise IntegrityError("storage ticket is not base64url") from e
    w = "storage ticket"
    m = require_map(cbor.decode(raw, MAX_TICKET_HEADER), w, {"account", "node", "si", "expires", "nonce", "sig"})
    t = StorageTicket(get_bytes(m, "account", w, 32), get_bytes(m, "node", w, 32), get_bytes(m, "si", w, SI_SIZE),
                      get_int(m, "expires", w, 0, 2**40), get_bytes(m, "nonce", w, NONCE_SIZE),
                      get_bytes(m, "sig", w, 64))
    verify(t.account, t.message(), t.sig)
    return t


def check_ticket(t: StorageTicket, node: bytes, si: bytes, now: float) -> None:
    """IntegrityError unless ``t`` is for this node and storage index and is current."""
    if t.node != node:
        raise IntegrityError("storage ticket is for another node")
    if t.si != si:
        raise IntegrityError("storage ticket is for another storage index")
    if t.expires <= now:
        raise IntegrityError("storage ticket has expired")
    if t.expires > now + MAX_TICKET_LIFE:
        raise IntegrityError(f"storage ticket is valid for more than {MAX_TICKET_LIFE} s")
