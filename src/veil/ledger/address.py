"""Account addresses: a tagged hash of the account's Ed25519 public key.

Binary form: 32 bytes, ``H("veil/address/v1", public key)``. Human form: ``vb1`` followed
by lowercase base32 of the 32 address bytes and a 4-byte checksum
``H("veil/address-checksum/v1", address)[:4]``, so a mistyped or truncated address is caught
before any money moves.
"""

from __future__ import annotations

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import UsageError
from veil.format.base32 import b32decode, b32encode

ADDRESS_SIZE = 32
PREFIX = "vb1"
_CHECKSUM_SIZE = 4
_H_ADDRESS = TaggedHash(labels.ADDRESS)
_H_CHECKSUM = TaggedHash(labels.ADDRESS_CHECKSUM)


class AddressError(UsageError):
    """That is not a valid Veil address: check that it was copied whole (it starts with vb1)."""


def address_of(public_key: bytes) -> bytes:
    """The 32-byte address of an Ed25519 public key."""
    return _H_ADDRESS(public_key)


def encode_address(addr: bytes) -> str:
    if len(addr) != ADDRESS_SIZE:
        raise ValueError("an address is 32 bytes")
    return PREFIX + b32encode(addr + _H_CHECKSUM(addr)[:_CHECKSUM_SIZE])


def decode_address(text: str) -> bytes:
    """Parse the human form; AddressError on a wrong prefix, length or checksum."""
    s = text.strip().lower()
    if not s.startswith(PREFIX):
        raise AddressError(f"not a Veil address (it must start with {PREFIX}): {text[:80]!r}")
    try:
        raw = b32decode(s[len(PREFIX) :])
    except ValueError as e:
        raise AddressError(f"not a Veil address (bad characters): {text[:80]!r}") from e
    if len(raw) != ADDRESS_SIZE + _CHECKSUM_SIZE:
        raise AddressError(f"not a Veil address (wrong length): {text[:80]!r}")
    addr, check = raw[:ADDRESS_SIZE], raw[ADDRESS_SIZE:]
    if _H_CHECKSUM(addr)[:_CHECKSUM_SIZE] != check or encode_address(addr) != s:
        # The second test rejects non-zero padding bits in the last character: one address, one spelling.
        raise AddressError(f"address checksum does not match (mistyped?): {text[:80]!r}")
    return addr


def short(addr: bytes) -> str:
    """A short human label for logs and tables (not parseable)."""
    return encode_address(addr)[:14] + "…"
