"""Signed mutable slot records (docs/specs/folders.md, "Slot record"): pure, no I/O.

    0      4   magic b"VLMS"
    4      1   version 0x01
    5      32  Ed25519 public key of the slot's writer
    37     8   sequence number, uint64_be, 1 .. 2**63-1
    45     1   P = number of parents, 0 .. MAX_PARENTS
    46     1   C = how many of them are the base chain, C <= P
    47     40P parents: P x (seq uint64_be || record hash[32]); the first C are the base chain
               (the base, its base, ..., nearest first), the others merged versions
    47+40P 4   payload length L, uint32_be, at most MAX_PAYLOAD
    51+40P L   payload (opaque here: a sealed folder root, format/folder_seal.py)
    ..     64  Ed25519 signature over len(label) || label || every byte before it, label veil/slot-sig/v1

``parents`` are the checkstrings of versions whose changes this one contains: its base chain (the
version it was built on, that one's base, ...) and versions merged into it. The writer vouches
for them, so a node may replace any of them by this one (docs/specs/folders.md, "Lineage").

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
MAX_PARENTS = 12
PARENT_SIZE = 40
MIN_HEADER = 51  # a record without parents
MAX_HEADER = MIN_HEADER + MAX_PARENTS * PARENT_SIZE
OVERHEAD = MIN_HEADER + SIGNATURE_SIZE  # bytes around the payload, without parents
MAX_PAYLOAD = 256 * 1024
MAX_RECORD = MAX_HEADER + SIGNATURE_SIZE + MAX_PAYLOAD
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
    parents: tuple[Checkstring, ...]
    chain_len: int  # parents[:chain_len] is the base chain
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

    @property
    def chain(self) -> tuple[Checkstring, ...]:
        return self.parents[: self.chain_len]


def sign_record(key: SigningKey, seq: int, payload: bytes, chain: tuple[Checkstring, ...] = (),
                merged: tuple[Checkstring, ...] = ()) -> SlotRecord:
    parents = chain + merged
    if not 1 <= seq <= MAX_SEQ:
        raise ValueError("sequence number out of range")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"slot payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if len(parents) > MAX_PARENTS or any(not 1 <= p.seq < seq or len(p.hash) != 32 for p in parents):
        raise ValueError(f"parents: at most {MAX_PARENTS}, each with a lower sequence number")
    body = (MAGIC + bytes([VERSION]) + key.public_key + struct.pack(">QBB", seq, len(parents), len(chain))
            + b"".join(struct.pack(">Q", p.seq) + p.hash for p in parents)
            + struct.pack(">I", len(payload)) + payload)
    sig = key.sign(_SIG_PREFIX + body)
    return SlotRecord(key.public_key, seq, parents, len(chain), payload, sig, body + sig)


def header_length(head: bytes | memoryview) -> int:
    """From the first 47 bytes, the length of the header (checked before reading on)."""
    if len(head) < 47 or bytes(head[:4]) != MAGIC:
        raise IntegrityError("not a slot record (bad magic)")
    if head[4] != VERSION:
        raise IntegrityError(f"slot record version {head[4]} is not supported")
    if head[45] > MAX_PARENTS or head[46] > head[45]:
        raise IntegrityError("slot record has too many parents")
    return MIN_HEADER + head[45] * PARENT_SIZE


def record_length(head: bytes | memoryview) -> int:
    """From the header (at most MAX_HEADER bytes), the whole record's length."""
    h = header_length(head)
    if len(head) < h:
        raise IntegrityError("slot record header is truncated")
    n = int.from_bytes(head[h - 4 : h], "big")
    if n > MAX_PAYLOAD:
        raise IntegrityError("slot record payload is too large")
    return h + n + SIGNATURE_SIZE


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
    parents = []
    for i in range(raw[45]):
        off = 47 + i * PARENT_SIZE
        (pseq,) = struct.unpack(">Q", raw[off : off + 8])
        if not 1 <= pseq < seq:
            raise IntegrityError("slot record parent is not older than the record")
        parents.append(Checkstring(pseq, raw[off + 8 : off + PARENT_SIZE]))
    if slot_id(pk) != expected_slot:
        raise IntegrityError("slot record belongs to another slot")
    body, sig = raw[:-SIGNATURE_SIZE], raw[-SIGNATURE_SIZE:]
    verify(pk, _SIG_PREFIX + body, sig)
    return SlotRecord(pk, seq, tuple(parents), raw[46], raw[header_length(raw):-SIGNATURE_SIZE], sig, raw)
