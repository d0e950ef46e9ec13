"""A payee's consent to a payer's cooperative channel close (``channel_close``; ledger.md).

The payee signs, with its account key, that the channel ends at exactly one final state: its
latest accepted cheque (by digest), or, if it holds none newer than what the ledger settled,
the settled sequence number. The ledger accepts the payer's ``channel_close`` only with that
cheque (or none, at that sequence), so the payer cannot close at an older cheque than the one
the payee agreed to; the payee refuses every cheque on the channel from the moment it signs
(its channel book), so nothing it serves after consenting goes unpaid. Pure.
"""

from __future__ import annotations

import hashlib

from veil.crypto import labels
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import SigningKey
from veil.ledger.envelope import sig_prefix

_PREFIX = sig_prefix(labels.CHANNEL_CLOSE_SIG)
NO_CHEQUE = bytes(32)


def consent_message(chain: str, channel: bytes, seq: int, cheque: bytes | None) -> bytes:
    """``"veil/channel-close-sig/v1" ‖ len(chain) ‖ chain ‖ channel ‖ seq u64 ‖ SHA-256(cheque) or 32 zeros``."""
    c = chain.encode()
    digest = hashlib.sha256(cheque).digest() if cheque is not None else NO_CHEQUE
    return _PREFIX + bytes([len(c)]) + c + channel + seq.to_bytes(8, "big") + digest


def sign_consent(key: SigningKey, chain: str, channel: bytes, seq: int, cheque: bytes | None) -> bytes:
    return key.sign(consent_message(chain, channel, seq, cheque))


def consent_ok(payee_pub: bytes, sig: bytes, chain: str, channel: bytes, seq: int, cheque: bytes | None) -> bool:
    return verify_fast(payee_pub, consent_message(chain, channel, seq, cheque), sig)
