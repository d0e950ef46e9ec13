"""Segment and metadata sealing: AES-256-GCM under HKDF-derived keys with STREAM nonces.

nonce(i, last) = uint64_be(i) || 0x000000 || (0x01 if last else 0x00)

Reordering changes i, truncation loses the last flag, extension adds a segment after the
one flagged last: each makes the tag check fail. Callers cannot pick a nonce.
"""

from __future__ import annotations

import struct
from typing import Any

from veil.crypto import labels
from veil.crypto.aead import TAG_SIZE, Aead
from veil.crypto.kdf import hkdf_sha256
from veil.errors import IntegrityError, WrongKeyError
from veil.format import cbor
from veil.format.fields import get_int, get_str, require_map

META_PAD = 128
MAX_META = 8192
MAX_NAME = 1024


def segment_nonce(index: int, last: bool) -> bytes:
    if not 0 <= index < 2**64:
        raise ValueError("segment index out of range")
    return struct.pack(">Q", index) + b"\x00\x00\x00" + (b"\x01" if last else b"\x00")


def segment_count(size: int, segment_size: int) -> int:
    """Number of segments for ``size`` plaintext bytes; an empty file still has one (empty) segment."""
    return max(1, -(-size // segment_size))


def segment_plain_len(index: int, size: int, segment_size: int) -> int:
    nseg = segment_count(size, segment_size)
    if index < nseg - 1:
        return segment_size
    return size - segment_size * (nseg - 1)


class SegmentCipher:
    """Seals and opens the segments of one file."""

    def __init__(self, file_key: bytes, nseg: int) -> None:
        self._aead = Aead(hkdf_sha256(file_key, labels.SEGMENT_KEY))
        self.nseg = nseg

    def seal_into(self, index: int, plaintext: bytes | memoryview, out: bytearray | memoryview) -> int:
        return self._aead.seal_into(segment_nonce(index, index == self.nseg - 1), plaintext, labels.SEGMENT_AAD, out)

    def open_into(self, index: int, ciphertext: bytes | memoryview, out: bytearray | memoryview) -> int:
        if len(ciphertext) < TAG_SIZE:
            raise IntegrityError("segment too short")
        return self._aead.open_into(
            segment_nonce(index, index == self.nseg - 1), ciphertext, labels.SEGMENT_AAD, out
        )


def seal_metadata(file_key: bytes, meta: dict[str, Any]) -> bytes:
    """Encrypt {name, type, size} (padded to a multiple of 128 bytes so names leak little)."""
    body = cbor.encode(meta)
    if len(body) > MAX_META - 2:
        raise ValueError("metadata too large")
    plain = struct.pack(">H", len(body)) + body
    plain += b"\x00" * ((-len(plain)) % META_PAD)
    return Aead(hkdf_sha256(file_key, labels.META_KEY)).seal(b"\x00" * 12, plain, labels.META_AAD)


def open_metadata(file_key: bytes, sealed: bytes) -> dict[str, Any]:
    try:
        plain = Aead(hkdf_sha256(file_key, labels.META_KEY)).open(b"\x00" * 12, sealed, labels.META_AAD)
    except IntegrityError as e:
        raise WrongKeyError("the key does not open this file (metadata failed to decrypt)") from e
    (n,) = struct.unpack(">H", plain[:2])
    if n > len(plain) - 2 or any(plain[2 + n :]):
        raise IntegrityError("metadata padding is malformed")
    m = require_map(cbor.decode(plain[2 : 2 + n], MAX_META), "metadata", {"name", "type", "size", "mtime"})
    get_str(m, "name", "metadata", MAX_NAME)
    get_str(m, "type", "metadata", 255)
    get_int(m, "size", "metadata")
    if "mtime" in m:
        get_int(m, "mtime", "metadata")
    return m
