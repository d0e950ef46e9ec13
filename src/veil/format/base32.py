"""Lowercase, unpadded RFC 4648 base32: case-insensitive and safe in URLs, DNS and shells."""

from __future__ import annotations

import base64
import binascii


def b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32decode(text: str) -> bytes:
    """Decode; raises ValueError on any character outside the alphabet or a bad length."""
    s = text.strip().upper()
    if not s.isascii():
        raise ValueError("non-ASCII character")
    pad = (-len(s)) % 8
    if pad in (2, 5, 7):
        raise ValueError("impossible length")
    try:
        raw = base64.b32decode(s + "=" * pad)
    except binascii.Error as e:
        raise ValueError(str(e)) from e
    # The last character may carry unused bits; only the canonical spelling (zeros) is one
    # text per value, so a mistyped last character is garbled rather than silently the same.
    if b32encode(raw) != s.lower():
        raise ValueError("non-canonical final character")
    return raw
