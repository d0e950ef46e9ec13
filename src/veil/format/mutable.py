"""Signed mutable slot records (docs/specs/folders.md, "Slot record"): pure, no I/O.

    0      4   magic b"VLMS"
    4      1   version 0x01
    5      32  Ed25519 public key of the slot's writer
    37     8   sequence number, uint64_be, 1 .. 2**63-1
    45     4   payload length L, uint32_be, at most MAX_PAYLOAD
    49     L   payload (opaque here: a sealed folder root, format/folder.py)
    49+L   64  Ed25519 signature over len(label) || label || bytes[0 : 49+L], label veil/slot-sig/v1

The slot id is ``H("veil/slot-id/v1", public key)``: a node given a slot id checks that the
record's key hashes to it and that the signature holds before it keeps the record, so nobody
without the write key can put a version into a slot. Size, magic and version are checked
before anything else is looked at.

Imports from: veil.crypto, veil.errors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sign import SIGNATURE_SIZE, SigningKey, verify
from veil.errors import IntegrityError

MAGIC = b"VLMS"
VERSION = 1
HEADER_SIZE = 49
OVERHEAD = HEADER_SIZE + SIGNATURE_SIZE
MAX_PAYLOAD = 256 * 1024
MAX_RECORD = OVERHEAD + MAX_PAYLOAD
MAX_SEQ = 2**63 - 1
SLOT_ID_SIZE = 32

_slot_id = TaggedHash(labels.SLOT_ID)
_record_hash = TaggedHash(labels.SLOT_RECORD)
_SIG_PREFIX = bytes([len(labels.SLOT_SIG)]) + labels.SLOT_SIG


def slot_id(public_key: bytes) -> bytes:
    return _slot_id(public_key)


@dataclass(frozen=True, order=True)
class Checkstring:
    """What a compare-and-swap names: a version's sequence number and the hash of its record.

    Versions are ordered by (seq, hash), so every reader breaks a tie the same way."""

    seq: int
    hash: bytes

    def to_text(self) -> str:
        return f"{self.seq}-{self.hash.hex()}"


EMPTY = "0"  # the checkstring text of a slot that holds nothing yet


def parse_checkstring(text: str) -> Checkstring | None:
    """``SEQ-HASHHEX``, or ``0`` for "the slot must be empty"; IntegrityError otherwise."""
    if text == EMPTY:
        return None
    seq, sep, h = text.partition("-")
    if not sep or not seq.isdigit() or len(seq) > 19 or len(h) != 64:
        raise IntegrityError("checkstring must be SEQ-HASH (hex) or 0")
    try:
        digest = bytes.fromhex(h)
    except ValueError as e:
        raise IntegrityError("checkstring hash must be hex") from e
    if not 1 <= int(seq) <= MAX_SEQ:
        raise IntegrityError("checkstring sequence number out of range")
    return Checkstring(int(seq), digest)


@dataclass(frozen=True)
class SlotRecord:
    """A verified record: only ``parse_record`` and ``sign_record`` make one."""

    public_key: bytes
    seq: int
    payload: bytes
    signature: bytes
    raw: bytes

    @property
    def slot_id(self) -> bytes:
        return slot_id(self.public_key)

    @cached_property
    def hash(self) -> bytes:
        return _record_hash(self.raw)

    @property
    def checkstring(self) -> Checkstring:
        return Checkstring(self.seq, self.hash)


def _header(public_key: bytes, seq: int, payload_len: int) -> bytes:
    return MAGIC + bytes([VERSION]) + public_key + struct.pack(">QI", seq, payload_len)


def sign_record(key: SigningKey, seq: int, payload: bytes) -> SlotRecord:
    if not 1 <= seq <= MAX_SEQ:
        raise ValueError("sequence number out of range")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"slot payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    body = _header(key.public_key, seq, len(payload)) + payload
    sig = key.sign(_SIG_PREFIX + body)
    return SlotRecord(key.public_key, seq, payload, sig, body + sig)


def record_length(head: bytes | memoryview) -> int:
    """From the first HEADER_SIZE bytes, the whole record's length (checked before reading on)."""
    if len(head) < HEADER_SIZE or bytes(head[:4]) != MAGIC:
        raise IntegrityError("not a slot record (bad magic)")
    if head[4] != VERSION:
        raise IntegrityError(f"slot record version {head[4]} is not supported")
    n = int.from_bytes(head[45:49], "big")
    if n > MAX_PAYLOAD:
        raise IntegrityError("slot record payload is too large")
    return OVERHEAD + n


def parse_record(data: bytes | memoryview, expected_slot: bytes) -> SlotRecord:
    """Check size, magic, version, length, key-to-slot binding and signature; IntegrityError on any failure."""
    if len(data) > MAX_RECORD:
        raise IntegrityError(f"slot record is {len(data)} bytes, over the {MAX_RECORD}-byte limit")
    raw = bytes(data)
    if record_length(raw) != len(raw):
        raise IntegrityError("slot record length does not match its header")
    pk = raw[5:37]
    (seq,) = struct.unpack(">Q", raw[37:45])
    if not 1 <= seq <= MAX_SEQ:
        raise IntegrityError("slot record sequence number out of range")
    if slot_id(pk) != expected_slot:
        raise IntegrityError("slot record belongs to another slot")
    body, sig = raw[:-SIGNATURE_SIZE], raw[-SIGNATURE_SIZE:]
    verify(pk, _SIG_PREFIX + body, sig)
    return SlotRecord(pk, seq, raw[HEADER_SIZE:-SIGNATURE_SIZE], sig, raw)
