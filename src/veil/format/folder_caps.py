"""Folder capabilities and folder links (docs/specs/folders.md, "Caps"): pure, no I/O.

    write cap   veil:fw1:<b32(write seed[32] || check[4])>
    read cap    veil:fr1:<b32(read key[32] || slot id[32] || check[4])>
    verify cap  veil:fv1:<b32(verify key[32] || slot id[32] || check[4])>
    folder link https://<gateway>/d/<b32(slot id[32] || check[4])>#<b32(read key[32] || check[4])>
    write link  https://<gateway>/d/<b32(slot id[32] || check[4])>#w-<b32(write seed[32] || check[4])>

Each cap is derived from the one before it and never the other way (Tahoe's SSK caps):

    write seed --Ed25519--> public key --H(veil/slot-id/v1)--> slot id
    write seed --HKDF(veil/folder-read-key/v1)--> read key --HKDF(veil/folder-verify-key/v1)--> verify key

The checksums are those of veil:r1/v1 caps (format/caps.py) with the kinds fw1, fr1, fv1, dl1
(the link's locator part), dk1 (its key part) and dw1 (a write link's key part).

Imports from: veil.crypto, veil.errors, veil.format.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from veil.crypto import labels
from veil.crypto.kdf import hkdf_sha256
from veil.crypto.sign import SigningKey
from veil.errors import CapError
from veil.format.base32 import b32encode
from veil.format.caps import MAX_CAP_TEXT, cap_checksum, pack_cap, unpack_cap
from veil.format.mutable import SLOT_ID_SIZE, slot_id

KEY_SIZE = 32
WRITE_FRAGMENT = "w-"  # a write link's fragment starts so (outside the base32 alphabet)


def read_key_of(seed: bytes) -> bytes:
    return hkdf_sha256(seed, labels.FOLDER_READ_KEY)


def verify_key_of(read_key: bytes) -> bytes:
    return hkdf_sha256(read_key, labels.FOLDER_VERIFY_KEY)


@dataclass(frozen=True)
class FolderVerifyCap:
    """Find the folder's slot, check its signatures, open its index of child verify caps; never read names."""

    verify_key: bytes
    slot_id: bytes

    def to_string(self) -> str:
        return pack_cap("fv1", self.verify_key + self.slot_id)


@dataclass(frozen=True)
class FolderReadCap:
    """Everything a verify cap does, and open the listing (names, metadata, child read caps)."""

    read_key: bytes
    slot_id: bytes

    @cached_property
    def verify_key(self) -> bytes:
        return verify_key_of(self.read_key)

    def verify_cap(self) -> FolderVerifyCap:
        return FolderVerifyCap(self.verify_key, self.slot_id)

    def to_string(self) -> str:
        return pack_cap("fr1", self.read_key + self.slot_id)

    def link(self, gateway: str) -> str:
        locator = b32encode(self.slot_id + cap_checksum(b"dl1", self.slot_id))
        key = b32encode(self.read_key + cap_checksum(b"dk1", self.read_key))
        return f"{gateway.rstrip('/')}/d/{locator}#{key}"


@dataclass(frozen=True)
class FolderWriteCap:
    """Everything a read cap does, and sign new versions (and open child folders' write caps)."""

    seed: bytes

    @cached_property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    @cached_property
    def slot_id(self) -> bytes:
        return slot_id(self.signing_key.public_key)

    @cached_property
    def read_key(self) -> bytes:
        return read_key_of(self.seed)

    def read_cap(self) -> FolderReadCap:
        return FolderReadCap(self.read_key, self.slot_id)

    def verify_cap(self) -> FolderVerifyCap:
        return self.read_cap().verify_cap()

    def to_string(self) -> str:
        return pack_cap("fw1", self.seed)

    def write_link(self, gateway: str) -> str:
        """A folder link that lets its holder add to the folder in a browser (the seed stays in
        the fragment, as a read link's key does)."""
        read = self.read_cap().link(gateway).split("#", 1)[0]
        return f"{read}#{WRITE_FRAGMENT}{b32encode(self.seed + cap_checksum(b'dw1', self.seed))}"


FolderCap = FolderWriteCap | FolderReadCap | FolderVerifyCap


def new_folder(rand: bytes | None = None) -> FolderWriteCap:
    """A new folder's write cap; ``rand`` (32 bytes) only for test vectors."""
    return FolderWriteCap(rand if rand is not None else secrets.token_bytes(KEY_SIZE))


def parse_folder_cap(text: str) -> FolderCap:
    """Any folder cap or folder link, as the most powerful kind it is."""
    text = text.strip()
    if len(text) > MAX_CAP_TEXT:
        raise CapError("cap is too long")
    if text.startswith("veil:fw1:"):
        return FolderWriteCap(unpack_cap("fw1", text[9:], KEY_SIZE, "folder write cap"))
    if text.startswith("veil:fr1:"):
        raw = unpack_cap("fr1", text[9:], KEY_SIZE + SLOT_ID_SIZE, "folder read cap")
        return FolderReadCap(raw[:KEY_SIZE], raw[KEY_SIZE:])
    if text.startswith("veil:fv1:"):
        raw = unpack_cap("fv1", text[9:], KEY_SIZE + SLOT_ID_SIZE, "folder verify cap")
        return FolderVerifyCap(raw[:KEY_SIZE], raw[KEY_SIZE:])
    if text.startswith(("https://", "http://")):
        return _parse_link(text)
    if text.startswith(("veil:r1:", "veil:v1:")):
        raise CapError("this is a file cap, not a folder cap")
    raise CapError("not a Veil folder cap or link (expected veil:fw1:…, veil:fr1:…, veil:fv1:… or https://…/d/…#…)")


def _parse_link(text: str) -> FolderReadCap | FolderWriteCap:
    url = urlsplit(text)
    parts = url.path.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "d":
        raise CapError("folder link is garbled: expected …/d/<folder>#<key>")
    if not url.fragment:
        raise CapError("folder link has no key: the part after '#' is missing")
    sid = unpack_cap("dl1", parts[-1], SLOT_ID_SIZE, "folder link")
    if url.fragment.startswith(WRITE_FRAGMENT):
        w = FolderWriteCap(unpack_cap("dw1", url.fragment[len(WRITE_FRAGMENT):], KEY_SIZE, "folder write link key"))
        if w.slot_id != sid:
            raise CapError("the key in this folder write link does not belong to this folder")
        return w
    key = unpack_cap("dk1", url.fragment, KEY_SIZE, "folder link key")
    return FolderReadCap(key, sid)


def read_cap_of(cap: FolderCap) -> FolderReadCap:
    if isinstance(cap, FolderVerifyCap):
        raise CapError("this is a folder verify cap: it can check a folder but not read it")
    return cap.read_cap() if isinstance(cap, FolderWriteCap) else cap


def verify_cap_of(cap: FolderCap) -> FolderVerifyCap:
    return cap if isinstance(cap, FolderVerifyCap) else cap.verify_cap()
