"""The storage API, v2 (docs/specs/storage-protocol.md): paths, limits, and the binary bodies.

A storage *slot* is (storage index, manifest hash): a node keeps a few different manifests
per storage index (at most ``MAX_SLOTS_PER_SI``), each with its own shares, so whoever learns
a storage index early cannot squat it (issue 19, finding 3). A share is stored only together
with its manifest, and only when ``manifest.si`` is the storage index and ``manifest.roots[shnum]``
is the share's root. ``m`` is always the manifest hash in hex.

    POST   /v1/uploads                       CBOR {si, shnum, nseg, bsize, lbsize} -> {id}
    PUT    /v1/uploads/{id}?start=I          body: count x (segment leaf[32] || block)
    POST   /v1/uploads/{id}/commit           CBOR {root, segroot, manifest} -> {root}
    DELETE /v1/uploads/{id}
    PUT    /v1/shares/{si}/{shnum}           one-shot: b"VLSU" 0x01 uint32_be(len) CBOR{nseg,
                                                bsize, lbsize, root, segroot, manifest} then
                                                nseg x (segment leaf[32] || block) -> {root}
    GET    /v1/shares/{si}?m=MHASH           -> CBOR {shares: [shnum...], manifest: bytes|null}
    GET    /v1/shares/{si}/{shnum}?m=MHASH&start=I&count=C[&manifest=1]
                                             -> b"VLBR" 0x01 uint32_be(len) CBOR{start, count,
                                                bproof, sproof[, manifest]} then the blocks
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.caps import SI_SIZE
from veil.format.fields import get_bytes, get_int, require_map
from veil.format.manifest import MAX_MANIFEST

MAX_UPLOAD_BODY = 32 << 20
MAX_ONESHOT_BODY = 8 << 20  # a one-shot share (small files): head + blocks in one request
MAX_SLOTS_PER_SI = 4
MAX_RANGE_BYTES = 32 << 20
MAX_CONTROL = 64 * 1024
RANGE_MAGIC = b"VLBR"
ONESHOT_MAGIC = b"VLSU"
ONESHOT_VERSION = 1
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


def parse_mhash(text: str | None) -> bytes:
    """The ``m`` query parameter: a manifest hash in hex."""
    if text is None:
        raise IntegrityError("missing manifest hash (m)")
    try:
        m = bytes.fromhex(text)
    except ValueError as e:
        raise IntegrityError("manifest hash must be hex") from e
    if len(m) != 32:
        raise IntegrityError("manifest hash has the wrong length")
    return m


# -- paths (clients build every storage URL here) -----------------------------------------
def uploads_path() -> str:
    return "/v1/uploads"


def upload_path(uid: str, start: int | None = None) -> str:
    return f"/v1/uploads/{uid}" + (f"?start={start}" if start is not None else "")


def commit_path(uid: str) -> str:
    return f"/v1/uploads/{uid}/commit"


def oneshot_path(si: bytes, shnum: int) -> str:
    return f"/v1/shares/{si.hex()}/{shnum}"


def slot_path(si: bytes, mhash: bytes) -> str:
    return f"/v1/shares/{si.hex()}?m={mhash.hex()}"


def delete_path(si: bytes, mhash: bytes) -> str:
    """``DELETE`` here with ``encode_delete(key)``: remove every share of the slot (caps.md, "Deletion keys")."""
    return slot_path(si, mhash)


MAX_DELETE_BODY = 128


def encode_delete(key: bytes) -> bytes:
    return cbor.encode({"key": key})


def parse_delete(value: Any) -> bytes:
    """The deletion key of a ``DELETE /v1/shares/{si}?m=M`` body (32 bytes)."""
    return get_bytes(require_map(value, "delete request", {"key"}), "key", "delete request", 32)


def range_path(si: bytes, mhash: bytes, shnum: int, start: int, count: int, manifest: bool = False) -> str:
    return (f"/v1/shares/{si.hex()}/{shnum}?m={mhash.hex()}&start={start}&count={count}"
            + ("&manifest=1" if manifest else ""))


# -- commit and one-shot bodies -------------------------------------------------------------
@dataclass(frozen=True)
class Commit:
    root: bytes
    segroot: bytes
    manifest: bytes


def encode_commit(c: Commit) -> bytes:
    return cbor.encode({"root": c.root, "segroot": c.segroot, "manifest": c.manifest})


def parse_commit(value: Any) -> Commit:
    w = "commit request"
    m = require_map(value, w, {"root", "segroot", "manifest"})
    return Commit(get_bytes(m, "root", w, 32), get_bytes(m, "segroot", w, 32),
                  get_bytes(m, "manifest", w, max_size=MAX_MANIFEST))


@dataclass(frozen=True)
class OneShotHead:
    nseg: int
    bsize: int
    lbsize: int
    root: bytes
    segroot: bytes
    manifest: bytes
    size: int  # bytes of the head; nseg x (leaf || block) follow

    @property
    def blocks_len(self) -> int:
        return self.nseg * LEAF + self.bsize * (self.nseg - 1) + self.lbsize


def encode_oneshot_head(nseg: int, bsize: int, lbsize: int, root: bytes, segroot: bytes, manifest: bytes) -> bytes:
    body = cbor.encode({"nseg": nseg, "bsize": bsize, "lbsize": lbsize, "root": root,
                        "segroot": segroot, "manifest": manifest})
    return ONESHOT_MAGIC + bytes([ONESHOT_VERSION]) + struct.pack(">I", len(body)) + body


def oneshot_head_size(buf: bytes | memoryview) -> int:
    """From the first 9 bytes: the whole head's size (checked before the rest is read)."""
    if len(buf) < 9 or bytes(buf[:4]) != ONESHOT_MAGIC or buf[4] != ONESHOT_VERSION:
        raise IntegrityError("one-shot share has a bad magic or version")
    n = int.from_bytes(buf[5:9], "big")
    if n > MAX_CONTROL:
        raise IntegrityError("one-shot share head is too large")
    return 9 + n


def parse_oneshot_head(buf: bytes | memoryview) -> OneShotHead:
    size = oneshot_head_size(buf)
    if len(buf) < size:
        raise IntegrityError("one-shot share head is truncated")
    w = "one-shot share"
    m = require_map(cbor.decode(buf[9:size], MAX_CONTROL), w,
                    {"nseg", "bsize", "lbsize", "root", "segroot", "manifest"})
    return OneShotHead(
        nseg=get_int(m, "nseg", w, 1, MAX_ONESHOT_BODY), bsize=get_int(m, "bsize", w, 1, MAX_ONESHOT_BODY),
        lbsize=get_int(m, "lbsize", w, 1, MAX_ONESHOT_BODY), root=get_bytes(m, "root", w, 32),
        segroot=get_bytes(m, "segroot", w, 32),
        manifest=get_bytes(m, "manifest", w, max_size=MAX_MANIFEST), size=size,
    )


def encode_range_head(start: int, count: int, bproof: list[bytes], sproof: list[bytes],
                      manifest: bytes | None = None) -> bytes:
    v: dict[str, Any] = {"start": start, "count": count, "bproof": bproof, "sproof": sproof}
    if manifest is not None:
        v["manifest"] = manifest
    body = cbor.encode(v)
    return RANGE_MAGIC + bytes([RANGE_VERSION]) + struct.pack(">I", len(body)) + body


@dataclass(frozen=True)
class RangeHead:
    start: int
    count: int
    bproof: list[bytes]
    sproof: list[bytes]
    size: int  # bytes of the head, blocks follow
    manifest: bytes | None = None  # only when asked for (manifest=1)


def parse_range_head(buf: bytes | memoryview) -> RangeHead:
    if len(buf) < 9 or bytes(buf[:4]) != RANGE_MAGIC or buf[4] != RANGE_VERSION:
        raise IntegrityError("block range reply has a bad magic or version")
    (n,) = struct.unpack(">I", bytes(buf[5:9]))
    if n > MAX_CONTROL or 9 + n > len(buf):
        raise IntegrityError("block range reply head is too large")
    w = "block range reply"
    m = require_map(cbor.decode(buf[9 : 9 + n], MAX_CONTROL), w, {"start", "count", "bproof", "sproof", "manifest"})
    proofs = []
    for key in ("bproof", "sproof"):
        p = m.get(key)
        if not isinstance(p, list) or len(p) > 128 or not all(isinstance(x, bytes) and len(x) == 32 for x in p):
            raise IntegrityError(f"{w}: bad {key}")
        proofs.append(p)
    man = get_bytes(m, "manifest", w, max_size=MAX_MANIFEST) if "manifest" in m else None
    return RangeHead(get_int(m, "start", w), get_int(m, "count", w, 1, 1 << 20), proofs[0], proofs[1], 9 + n, man)


def range_reply_max(count: int, bsize: int) -> int:
    """Upper bound on a range reply's size, for sizing the receive buffer (a manifest included)."""
    return 9 + MAX_CONTROL + MAX_MANIFEST + count * bsize
