"""The manifest: everything needed to fetch, verify and decode a file, except the key.

    manifest bytes = b"VLMF" || version (0x01) || canonical CBOR map
    manifest hash  = H("veil/manifest/v1", manifest bytes)

The read and verify caps carry the manifest hash, so a manifest fetched from any node is
checked before a single field of it is believed. Fields: docs/specs/manifest.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.erasure import CODEC, CODECS, MAX_N
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.caps import SI_SIZE
from veil.format.fields import get_bytes, get_int, get_opt_bytes, get_str, require_map
from veil.format.segments import segment_count

MAGIC = b"VLMF"
VERSION = 1
MAX_MANIFEST = 64 * 1024
AEAD = "aes256gcm-stream/v1"
MIN_SEGMENT = 4096
MAX_SEGMENT = 16 << 20
MAX_SIZE = 2**53
_hash = TaggedHash(labels.MANIFEST)

FIELDS = {
    "si", "codec", "aead", "k", "n", "happy", "segsize", "size", "nseg",
    "bsize", "lbsize", "roots", "segroot", "meta", "payout", "delete",
}


@dataclass(frozen=True)
class Manifest:
    si: bytes
    k: int
    n: int
    happy: int
    segsize: int
    size: int
    bsize: int
    lbsize: int
    roots: tuple[bytes, ...]
    segroot: bytes
    meta: bytes
    payout: bytes | None = None
    delete: bytes | None = None  # commitment to the uploader's deletion key (format/deletion.py)
    codec: str = CODEC
    aead: str = AEAD

    @property
    def nseg(self) -> int:
        return segment_count(self.size, self.segsize)

    def ciphertext_len(self, index: int) -> int:
        """Length of sealed segment ``index`` (plaintext + 16-byte tag)."""
        if index < self.nseg - 1:
            return self.segsize + 16
        return self.size - self.segsize * (self.nseg - 1) + 16

    def block_len(self, index: int) -> int:
        return self.bsize if index < self.nseg - 1 else self.lbsize

    def share_len(self) -> int:
        return self.bsize * (self.nseg - 1) + self.lbsize

    def to_bytes(self) -> bytes:
        m: dict[str, object] = {
            "si": self.si, "codec": self.codec, "aead": self.aead, "k": self.k, "n": self.n,
            "happy": self.happy, "segsize": self.segsize, "size": self.size, "nseg": self.nseg,
            "bsize": self.bsize, "lbsize": self.lbsize, "roots": list(self.roots),
            "segroot": self.segroot, "meta": self.meta,
        }
        if self.payout is not None:
            m["payout"] = self.payout
        if self.delete is not None:
            m["delete"] = self.delete
        return MAGIC + bytes([VERSION]) + cbor.encode(m)

    def hash(self) -> bytes:
        return _hash(self.to_bytes())


def manifest_hash(data: bytes) -> bytes:
    return _hash(data)


def parse_manifest(data: bytes, expected_hash: bytes | None = None, expected_si: bytes | None = None) -> Manifest:
    """Check size, magic, version (and hash, when known) before decoding; then every field.

    ``expected_si``: the storage index of the cap the manifest was fetched for. A manifest
    naming another storage index is refused: for a read cap the storage index is a hash of
    the file key, so this check is what commits the manifest (and its ciphertexts) to the key
    (docs/specs/crypto.md, "Key commitment")."""
    if len(data) > MAX_MANIFEST:
        raise IntegrityError("manifest too large")
    if expected_hash is not None and _hash(data) != expected_hash:
        raise IntegrityError("manifest does not match the cap (hash mismatch)")
    if data[:4] != MAGIC:
        raise IntegrityError("not a Veil manifest (bad magic)")
    if len(data) < 5 or data[4] != VERSION:
        raise IntegrityError(f"unsupported manifest version {data[4] if len(data) > 4 else '?'}")
    w = "manifest"
    m = require_map(cbor.decode(data[5:], MAX_MANIFEST), w, FIELDS)
    codec = get_str(m, "codec", w, 64)
    if codec not in CODECS:
        raise IntegrityError(f"manifest names an unknown erasure codec {codec!r}")
    if get_str(m, "aead", w, 64) != AEAD:
        raise IntegrityError("manifest names an unknown encryption scheme")
    n = get_int(m, "n", w, 1, MAX_N)
    k = get_int(m, "k", w, 1, n)
    happy = get_int(m, "happy", w, 1, n)
    segsize = get_int(m, "segsize", w, MIN_SEGMENT, MAX_SEGMENT)
    size = get_int(m, "size", w, 0, MAX_SIZE)
    nseg = get_int(m, "nseg", w, 1, 2**40)
    if nseg != segment_count(size, segsize):
        raise IntegrityError("manifest segment count does not match its size")
    roots_v = m.get("roots")
    if not isinstance(roots_v, list) or len(roots_v) != n or not all(isinstance(r, bytes) and len(r) == 32 for r in roots_v):
        raise IntegrityError("manifest: field 'roots' must hold n 32-byte hashes")
    man = Manifest(
        si=get_bytes(m, "si", w, SI_SIZE), k=k, n=n, happy=happy, segsize=segsize, size=size,
        bsize=get_int(m, "bsize", w, 1, 2 * MAX_SEGMENT), lbsize=get_int(m, "lbsize", w, 1, 2 * MAX_SEGMENT),
        roots=tuple(roots_v), segroot=get_bytes(m, "segroot", w, 32), meta=get_bytes(m, "meta", w, max_size=16384),
        payout=get_opt_bytes(m, "payout", w), codec=codec, delete=get_opt_bytes(m, "delete", w),
    )
    if man.delete is not None and len(man.delete) != 32:
        raise IntegrityError("manifest: field 'delete' must be a 32-byte commitment")
    if man.to_bytes() != data:
        raise IntegrityError("manifest is not in canonical form")
    if expected_si is not None and man.si != expected_si:
        raise IntegrityError("manifest names another storage index than the cap")
    return man
