"""The signed envelope shared by transactions, cheques and blocks.

Wire form: a canonical CBOR array ``[magic: text, version: uint, body: bytes, sig: bytes(64)]``
where ``body`` is itself canonical CBOR (a map). The signature covers
``len(label) || label || body``, with a label per object kind, so a signature over one kind
can never be replayed as another, and the signed bytes are exactly the bytes on the wire
(no re-encoding before verifying). Size, magic and version are checked before anything else.
"""

from __future__ import annotations

from typing import Any

from veil.crypto.sign import SIGNATURE_SIZE, SigningKey
from veil.errors import IntegrityError, LedgerError
from veil.format import cbor


def sig_prefix(label: bytes) -> bytes:
    return bytes([len(label)]) + label


def seal(magic: str, version: int, body: dict[str, Any], key: SigningKey, label: bytes) -> tuple[bytes, bytes, bytes]:
    """Encode and sign; returns (wire bytes, body bytes, signature)."""
    body_bytes = cbor.encode(body)
    sig = key.sign(sig_prefix(label) + body_bytes)
    return cbor.encode([magic, version, body_bytes, sig]), body_bytes, sig


def open_envelope(raw: bytes, magic: str, version: int, max_size: int, what: str) -> tuple[dict[str, Any], bytes, bytes]:
    """Decode the envelope and its body (not the signature); LedgerError ``oversized``/``malformed``."""
    if len(raw) > max_size:
        raise LedgerError(f"{what} is {len(raw)} bytes, over the {max_size}-byte limit", "oversized")
    try:
        # Every field is type-checked below and by the caller's schema, so the generic walk is skipped.
        outer = cbor.decode_for_schema(raw, max_size)
        if not isinstance(outer, list) or len(outer) != 4:
            raise LedgerError(f"{what}: not a signed envelope", "malformed")
        m, v, body_bytes, sig = outer
        if m != magic:
            raise LedgerError(f"{what}: wrong magic {str(m)[:20]!r}", "malformed")
        if type(v) is not int or v != version:
            raise LedgerError(f"{what}: version {v!r} is not supported", "malformed")
        if not isinstance(body_bytes, bytes) or not isinstance(sig, bytes) or len(sig) != SIGNATURE_SIZE:
            raise LedgerError(f"{what}: malformed envelope", "malformed")
        body = cbor.decode_for_schema(body_bytes, max_size)
    except IntegrityError as e:
        raise LedgerError(f"{what}: {e}", "malformed") from e
    if not isinstance(body, dict):
        raise LedgerError(f"{what}: body is not a map", "malformed")
    return body, body_bytes, sig


def want_int(m: dict[str, Any], key: str, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise LedgerError(f"{what}: field {key!r} must be an integer in [{lo}, {hi}]", "malformed")
    return v


def want_amount(m: dict[str, Any], key: str, what: str, allow_zero: bool = False) -> int:
    """A money amount: malformed if not an integer, ``bad_amount`` if zero, negative or too large."""
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise LedgerError(f"{what}: field {key!r} must be an integer amount", "malformed")
    if v < 0 or (v == 0 and not allow_zero) or v > 2**63 - 1:
        raise LedgerError(f"{what}: {key} {v} is not a valid amount (must be {'>= 0' if allow_zero else '> 0'} and < 2^63)", "bad_amount")
    return v


def want_bytes(m: dict[str, Any], key: str, what: str, size: int | None = None, max_size: int = 8192) -> bytes:
    v = m.get(key)
    if not isinstance(v, bytes) or (size is not None and len(v) != size) or len(v) > max_size:
        raise LedgerError(f"{what}: field {key!r} must be {size or f'at most {max_size}'} bytes", "malformed")
    return v


def want_fields(m: dict[str, Any], what: str, required: frozenset[str], optional: frozenset[str] = frozenset()) -> None:
    keys = m.keys()
    missing = required - keys
    if missing:
        raise LedgerError(f"{what}: missing fields {sorted(missing)}", "malformed")
    extra = keys - required - optional
    if extra:
        raise LedgerError(f"{what}: unknown fields {sorted(map(str, extra))}", "malformed")
