"""Sealed folder bodies: a slot's payload (the root) or an immutable page file (pure, no I/O).

docs/specs/folders.md, "Sealed body". Byte layout:

    0     4   magic b"VLFD"
    4     1   version 0x01
    5     1   role: 0 root (in a slot record), 1 page (in an immutable file)
    6     32  salt (random per sealing)
    38    4   I = length of the sealed index, uint32_be
    42    I   sealed index   = AES-256-GCM(HKDF(verify key, salt, veil/folder-index-key/v1), nonce 0,
                                           AAD = veil/folder-index/v1 || bytes[0:38] || slot id || uint64_be(seq), pad(index))
    42+I  ..  sealed listing = AES-256-GCM(HKDF(read key, salt, veil/folder-listing-key/v1), nonce 0,
                                           AAD = veil/folder-listing/v1 || bytes[0:38] || slot id || uint64_be(seq), pad(listing))

``pad(x) = uint32_be(len(x)) || x || zeros`` up to a multiple of PAD bytes. The index is the CBOR
list of the children's verify caps (a leaf: each entry's v1/fv1 cap, in entry order; a page
index: each page's r1 cap), so a verify cap holder can walk and repair the tree without seeing a
name. A fresh 32-byte salt per sealing makes every (key, nonce) pair unique, so the zero nonce
is safe. Pages are sealed with seq 0 (a page is reused by later versions unchanged).

Imports from: veil.crypto, veil.errors, veil.format.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable

from veil.crypto import labels
from veil.crypto.aead import TAG_SIZE, Aead
from veil.crypto.kdf import hkdf_sha256
from veil.errors import IntegrityError, WrongKeyError
from veil.format import cbor
from veil.format.folder import Listing, parse_listing
from veil.format.folder_caps import FolderReadCap, FolderVerifyCap, FolderWriteCap
from veil.format.mutable import MAX_PAYLOAD

MAGIC = b"VLFD"
VERSION = 1
ROOT = 0
PAGE = 1
SALT_SIZE = 32
HEAD_SIZE = 42
PAD = 256
MAX_BODY = MAX_PAYLOAD
MAX_INDEX = 128 * 1024
NONCE = bytes(12)

Random = Callable[[int], bytes]


def derive_index(listing: Listing) -> list[str]:
    """The children's caps a verify cap holder may see: verify caps of entries, read caps of pages."""
    if listing.pages:
        return [p.cap for p in listing.pages]
    out = []
    for e in listing.entries:
        child = e.child()
        out.append(child.verify_cap().to_string())
    return out


def _pad(data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack(">I", len(data)) + data + bytes(-n % PAD)


def _unpad(data: bytes) -> bytes:
    if len(data) < 4 or len(data) % PAD:
        raise IntegrityError("sealed folder body has bad padding")
    (n,) = struct.unpack(">I", data[:4])
    if 4 + n > len(data) or any(data[4 + n :]):
        raise IntegrityError("sealed folder body has bad padding")
    return data[4 : 4 + n]


def _aad(label: bytes, head: bytes, slot: bytes, seq: int) -> bytes:
    return label + head + slot + struct.pack(">Q", seq)


def _key(ikm: bytes, salt: bytes, label: bytes) -> Aead:
    return Aead(hkdf_sha256(ikm, label, salt=salt))


def seal_body(cap: FolderReadCap | FolderWriteCap, seq: int, listing: Listing, role: int = ROOT,
              rand: Random = secrets.token_bytes) -> bytes:
    """Seal ``listing`` for version ``seq`` (0 for a page) of the folder ``cap`` names."""
    rc = cap.read_cap() if isinstance(cap, FolderWriteCap) else cap
    if role not in (ROOT, PAGE) or (role == PAGE) != (seq == 0):
        raise ValueError("a root is sealed with its sequence number, a page with 0")
    head = MAGIC + bytes([VERSION, role]) + rand(SALT_SIZE)
    salt = head[6:38]
    index = _pad(cbor.encode(derive_index(listing)))
    body = _pad(listing.to_bytes())
    sealed_index = _key(rc.verify_key, salt, labels.FOLDER_INDEX_KEY).seal(
        NONCE, index, _aad(labels.FOLDER_INDEX_AAD, head, rc.slot_id, seq))
    sealed_listing = _key(rc.read_key, salt, labels.FOLDER_LISTING_KEY).seal(
        NONCE, body, _aad(labels.FOLDER_LISTING_AAD, head, rc.slot_id, seq))
    out = head + struct.pack(">I", len(sealed_index)) + sealed_index + sealed_listing
    if len(out) > MAX_BODY:
        raise ValueError(f"sealed folder body of {len(out)} bytes is over {MAX_BODY}: split it into pages")
    return out


def _split(data: bytes, role: int) -> tuple[bytes, bytes, bytes]:
    if len(data) > MAX_BODY:
        raise IntegrityError(f"sealed folder body is over {MAX_BODY} bytes")
    if len(data) < HEAD_SIZE or data[:4] != MAGIC:
        raise IntegrityError("not a sealed folder body (bad magic)")
    if data[4] != VERSION:
        raise IntegrityError(f"sealed folder body version {data[4]} is not supported")
    if data[5] != role:
        raise IntegrityError("sealed folder body has the wrong role (a page where a root belongs, or back)")
    (n,) = struct.unpack(">I", data[38:42])
    if n > MAX_INDEX or HEAD_SIZE + n + TAG_SIZE > len(data) or n < TAG_SIZE:
        raise IntegrityError("sealed folder body has a bad index length")
    return data[:38], data[HEAD_SIZE : HEAD_SIZE + n], data[HEAD_SIZE + n :]


def _index(raw: bytes) -> list[str]:
    v = cbor.decode(raw, MAX_INDEX)
    if not isinstance(v, list) or not all(isinstance(c, str) and len(c) <= 256 for c in v):
        raise IntegrityError("folder index must be a list of caps")
    return v


def open_index(cap: FolderVerifyCap, seq: int, data: bytes, role: int = ROOT) -> list[str]:
    """The children's verify caps (or pages' read caps), with a verify cap: no names, no keys."""
    head, sealed_index, _ = _split(data, role)
    try:
        plain = _key(cap.verify_key, head[6:38], labels.FOLDER_INDEX_KEY).open(
            NONCE, sealed_index, _aad(labels.FOLDER_INDEX_AAD, head, cap.slot_id, seq))
    except IntegrityError as e:
        raise WrongKeyError("the verify cap does not open this folder, or the folder was tampered with") from e
    return _index(_unpad(plain))


def open_body(cap: FolderReadCap, seq: int, data: bytes, role: int = ROOT) -> Listing:
    """The listing, checked against the index sealed beside it (so a verifier and a reader see
    the same children)."""
    head, _, sealed_listing = _split(data, role)
    try:
        plain = _key(cap.read_key, head[6:38], labels.FOLDER_LISTING_KEY).open(
            NONCE, sealed_listing, _aad(labels.FOLDER_LISTING_AAD, head, cap.slot_id, seq))
    except IntegrityError as e:
        raise WrongKeyError("the read cap does not open this folder, or the folder was tampered with") from e
    listing = parse_listing(_unpad(plain))
    if open_index(cap.verify_cap(), seq, data, role) != derive_index(listing):
        raise IntegrityError("folder index does not match its listing")
    return listing


def seal_child_write_cap(parent: FolderWriteCap, child: FolderWriteCap, rand: Random = secrets.token_bytes) -> bytes:
    """A child folder's write cap as its parent's entry keeps it: only the parent's writers open it."""
    salt = rand(SALT_SIZE)
    aead = _key(parent.seed, salt, labels.FOLDER_CHILD_WRITE_KEY)
    return salt + aead.seal(NONCE, child.seed, labels.FOLDER_CHILD_WRITE_AAD + parent.slot_id + child.slot_id)


def open_child_write_cap(parent: FolderWriteCap, child_slot: bytes, wcap: bytes) -> FolderWriteCap:
    if len(wcap) != SALT_SIZE + 32 + TAG_SIZE:
        raise IntegrityError("sealed child write cap has the wrong length")
    aead = _key(parent.seed, wcap[:SALT_SIZE], labels.FOLDER_CHILD_WRITE_KEY)
    child = FolderWriteCap(aead.open(NONCE, wcap[SALT_SIZE:], labels.FOLDER_CHILD_WRITE_AAD + parent.slot_id + child_slot))
    if child.slot_id != child_slot:
        raise IntegrityError("sealed child write cap belongs to another folder")
    return child
