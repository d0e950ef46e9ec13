"""The storage API (docs/specs/storage-protocol.md): paths, limits, and the binary bodies.

    POST   /v1/uploads                       CBOR {si, shnum, nseg, bsize, lbsize} -> {id}
    PUT    /v1/uploads/{id}?start=I          body: count x (segment leaf[32] || block)
    POST   /v1/uploads/{id}/commit           CBOR {root, segroot} -> {root}
    DELETE /v1/uploads/{id}
    PUT    /v1/manifests/{si}                body: manifest bytes
    GET    /v1/shares/{si}                   -> CBOR {shares: [shnum...], manifest: bytes|null}
    GET    /v1/shares/{si}/{shnum}?start=I&count=C
                                             -> b"VLBR" 0x01 uint32_be(len) CBOR{start, count,
                                                bproof, sproof} then the blocks
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.caps import SI_SIZE
from veil.format.fields import get_bytes, get_int, require_map

MAX_UPLOAD_BODY = 32 << 20
MAX_RANGE_BYTES = 32 << 20
MAX_CONTROL = 64 * 1024
RANGE_MAGIC = b"VLBR"
RANGE_VERSION = 1
LEAF = 32


def parse_si(text: str) -> bytes:
    try:
        si = bytes.fromhex(text)
    except ValueError as e:
        raise IntegrityError("storage index must be hex") from e
    if len(si) != SI_SIZE:
        raise IntegrityError("storage index has the wrong length")
    return si


@dataclass(frozen=True)
class UploadRequest:
    si: bytes
    shnum: int
    nseg: int
    bsize: int
    lbsize: int

    def to_value(self) -> dict[str, Any]:
        return {"si": self.si, "shnum": self.shnum, "nseg": self.nseg, "bsize": self.bsize, "lbsize": self.lbsize}

    @property
    def share_len(self) -> int:
        return self.bsize * (self.nseg - 1) + self.lbsize


def parse_upload_request(value: Any) -> UploadRequest:
    w = "upload request"
    m = require_map(value, w, {"si", "shnum", "nseg", "bsize", "lbsize"})
    return UploadRequest(
        si=get_bytes(m, "si", w, SI_SIZE), shnum=get_int(m, "shnum", w, 0, 254),
        nseg=get_int(m, "nseg", w, 1, 2**40), bsize=get_int(m, "bsize", w, 1, 1 << 26),
        lbsize=get_int(m, "lbsize", w, 1, 1 << 26),
    )


def encode_range_head(start: int, count: int, bproof: list[bytes], sproof: list[bytes]) -> bytes:
    body = cbor.encode({"start": start, "count": count, "bproof": bproof, "sproof": sproof})
    return RANGE_MAGIC + bytes([RANGE_VERSION]) + struct.pack(">I", len(body)) + body


@dataclass(frozen=True)
class RangeHead:
    start: int
    count: int
    bproof: list[bytes]
    sproof: list[bytes]
    size: int  # bytes of the head, blocks follow


def parse_range_head(buf: bytes | memoryview) -> RangeHead:
    if len(buf) < 9 or bytes(buf[:4]) != RANGE_MAGIC or buf[4] != RANGE_VERSION:
        raise IntegrityError("block range reply has a bad magic or version")
    (n,) = struct.unpack(">I", bytes(buf[5:9]))
    if n > MAX_CONTROL or 9 + n > len(buf):
        raise IntegrityError("block range reply head is too large")
    w = "block range reply"
    m = require_map(cbor.decode(buf[9 : 9 + n], MAX_CONTROL), w, {"start", "count", "bproof", "sproof"})
    proofs = []
    for key in ("bproof", "sproof"):
        p = m.get(key)
        if not isinstance(p, list) or len(p) > 128 or not all(isinstance(x, bytes) and len(x) == 32 for x in p):
            raise IntegrityError(f"{w}: bad {key}")
        proofs.append(p)
    return RangeHead(get_int(m, "start", w), get_int(m, "count", w, 1, 1 << 20), proofs[0], proofs[1], 9 + n)


def range_reply_max(count: int, bsize: int) -> int:
    """Upper bound on a range reply's size, for sizing the receive buffer."""
    return 9 + MAX_CONTROL + count * bsize
