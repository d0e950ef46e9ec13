"""The mutable-slot API (docs/specs/folders.md, "Node API"): paths, limits and bodies, sans-I/O.

    PUT /v1/mutable/{slot}?expect=CS   body: the slot record (format/mutable.py), raw
        200 CBOR {seq, hash}                     stored (or already held, byte for byte)
        409 CBOR {error: "conflict", message, current: record bytes | null}
                                                 the slot's current version is not ``expect``
                                                 or not lower than the new one; nothing changed
        400 bad record (forged signature, wrong slot, garbled); 413 record too large
    GET /v1/mutable/{slot}[?seq=N]     200 the record, raw; 404 none (or version N not kept)
    GET /v1/mutable/{slot}/versions    200 CBOR {versions: [{seq, hash, size}...]} newest first

``slot`` is the slot id in hex. ``CS`` is a checkstring, ``SEQ-HASHHEX`` or ``0`` (the slot
must be empty); without ``expect`` the node only requires the new sequence number to be higher.

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.fields import get_bytes, get_int, require_map
from veil.format.mutable import EMPTY, MAX_RECORD, SLOT_ID_SIZE, Checkstring

MAX_VERSIONS_REPLY = 64 * 1024
MAX_CONFLICT_REPLY = MAX_RECORD + 1024


def parse_slot_id(text: str) -> bytes:
    if len(text) != 2 * SLOT_ID_SIZE:
        raise IntegrityError("slot id must be 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise IntegrityError("slot id must be hex") from e


def expect_text(cs: Checkstring | None) -> str:
    return EMPTY if cs is None else cs.to_text()


def slot_path(slot: bytes, seq: int | None = None) -> str:
    return f"/v1/mutable/{slot.hex()}" + (f"?seq={seq}" if seq is not None else "")


def put_path(slot: bytes, expect: Checkstring | None, cas: bool = True) -> str:
    return f"/v1/mutable/{slot.hex()}" + (f"?expect={expect_text(expect)}" if cas else "")


def versions_path(slot: bytes) -> str:
    return f"/v1/mutable/{slot.hex()}/versions"


@dataclass(frozen=True)
class Stored:
    seq: int
    hash: bytes


def encode_stored(seq: int, digest: bytes) -> dict[str, Any]:
    return {"seq": seq, "hash": digest}


def parse_stored(value: Any) -> Stored:
    w = "slot write reply"
    m = require_map(value, w, {"seq", "hash"})
    return Stored(get_int(m, "seq", w, 1), get_bytes(m, "hash", w, 32))


def encode_conflict(message: str, current: bytes | None) -> bytes:
    return cbor.encode({"error": "conflict", "message": message, "current": current})


def parse_conflict(body: bytes) -> bytes | None:
    """The current record a 409 carries (raw: the caller verifies it with parse_record)."""
    m = require_map(cbor.decode(body, MAX_CONFLICT_REPLY), "slot conflict reply", {"error", "message", "current"})
    cur = m.get("current")
    if cur is not None and (not isinstance(cur, bytes) or len(cur) > MAX_RECORD):
        raise IntegrityError("slot conflict reply: bad current record")
    return cur


@dataclass(frozen=True)
class VersionInfo:
    seq: int
    hash: bytes
    size: int


def encode_versions(versions: list[VersionInfo]) -> dict[str, Any]:
    return {"versions": [{"seq": v.seq, "hash": v.hash, "size": v.size} for v in versions]}


def parse_versions(value: Any) -> list[VersionInfo]:
    w = "slot versions reply"
    m = require_map(value, w, {"versions"})
    items = m.get("versions")
    if not isinstance(items, list) or len(items) > 1024:
        raise IntegrityError(f"{w}: bad versions list")
    out = []
    for x in items:
        v = require_map(x, w, {"seq", "hash", "size"})
        out.append(VersionInfo(get_int(v, "seq", w, 1), get_bytes(v, "hash", w, 32), get_int(v, "size", w, 0, MAX_RECORD)))
    return out
