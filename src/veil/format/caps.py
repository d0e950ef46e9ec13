"""Capabilities and share links (docs/specs/caps.md).

    read cap    veil:r1:<base32(file key[32] || manifest hash[32] || check[4])>
    verify cap  veil:v1:<base32(storage index[16] || manifest hash[32] || check[4])>
    share link  https://<gateway>/f/<verify cap payload>#<base32(file key[32] || check[4])>

``check`` is the first 4 bytes of a tagged hash over the kind and payload, so a mistyped or
truncated cap is reported as garbled instead of sending the user to a file nobody has. The
storage index is a tagged hash of the file key; a verify cap lets its holder find and check
shares but not read them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import CapError, WrongKeyError
from veil.format.base32 import b32decode, b32encode

KEY_SIZE = 32
SI_SIZE = 16
HASH_SIZE = 32
CHECK_SIZE = 4
MAX_CAP_TEXT = 512

_check = TaggedHash(labels.CAP_CHECKSUM)
_si = TaggedHash(labels.STORAGE_INDEX)


def storage_index(file_key: bytes) -> bytes:
    return _si(file_key)[:SI_SIZE]


def cap_checksum(kind: bytes, payload: bytes) -> bytes:
    return _check(kind, b"\x00", payload)[:CHECK_SIZE]


def pack_cap(kind: str, payload: bytes) -> str:
    return f"veil:{kind}:" + b32encode(payload + cap_checksum(kind.encode(), payload))


def unpack_cap(kind: str, text: str, size: int, what: str) -> bytes:
    try:
        raw = b32decode(text)
    except ValueError as e:
        raise CapError(f"{what} is garbled: {e}") from e
    if len(raw) != size + CHECK_SIZE:
        raise CapError(f"{what} is truncated or too long ({len(raw)} bytes, expected {size + CHECK_SIZE})")
    payload, check = raw[:size], raw[size:]
    if cap_checksum(kind.encode(), payload) != check:
        raise CapError(f"{what} is garbled (checksum mismatch); check that it was copied whole")
    return payload


@dataclass(frozen=True)
class VerifyCap:
    storage_index: bytes
    manifest_hash: bytes

    def to_string(self) -> str:
        return pack_cap("v1", self.storage_index + self.manifest_hash)

    def payload(self) -> str:
        return self.to_string().split(":", 2)[2]


@dataclass(frozen=True)
class ReadCap:
    file_key: bytes
    manifest_hash: bytes

    @property
    def storage_index(self) -> bytes:
        return storage_index(self.file_key)

    def verify_cap(self) -> VerifyCap:
        return VerifyCap(self.storage_index, self.manifest_hash)

    def to_string(self) -> str:
        return pack_cap("r1", self.file_key + self.manifest_hash)

    def link(self, gateway: str) -> str:
        key_part = b32encode(self.file_key + cap_checksum(b"k1", self.file_key))
        return f"{gateway.rstrip('/')}/f/{self.verify_cap().payload()}#{key_part}"


def new_file_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def parse_read_cap(text: str) -> ReadCap:
    """A read cap (``veil:r1:…``) or a share link (``https://…/f/<verify>#<key>``)."""
    text = text.strip()
    if len(text) > MAX_CAP_TEXT:
        raise CapError("cap is too long")
    if text.startswith("veil:r1:"):
        raw = unpack_cap("r1", text[8:], KEY_SIZE + HASH_SIZE, "read cap")
        return ReadCap(raw[:KEY_SIZE], raw[KEY_SIZE:])
    if text.startswith(("https://", "http://")):
        return _parse_link(text)
    if text.startswith("veil:v1:"):
        raise CapError("this is a verify cap: it can check a file but not read it")
    raise CapError("not a Veil read cap or share link (expected veil:r1:… or https://…/f/…#…)")


def _parse_link(text: str) -> ReadCap:
    url = urlsplit(text)
    parts = url.path.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "f":
        raise CapError("share link is garbled: expected …/f/<file>#<key>")
    if not url.fragment:
        raise CapError("share link has no key: the part after '#' is missing")
    vraw = unpack_cap("v1", parts[-1], SI_SIZE + HASH_SIZE, "share link")
    kraw = unpack_cap("k1", url.fragment, KEY_SIZE, "share link key")
    cap = ReadCap(kraw, vraw[SI_SIZE:])
    if cap.storage_index != vraw[:SI_SIZE]:
        raise WrongKeyError("the key in this link does not belong to this file")
    return cap


def parse_verify_cap(text: str) -> VerifyCap:
    """A verify cap; a read cap or link is accepted too (it implies the verify cap)."""
    text = text.strip()
    if len(text) > MAX_CAP_TEXT:
        raise CapError("cap is too long")
    if text.startswith("veil:v1:"):
        raw = unpack_cap("v1", text[8:], SI_SIZE + HASH_SIZE, "verify cap")
        return VerifyCap(raw[:SI_SIZE], raw[SI_SIZE:])
    return parse_read_cap(text).verify_cap()
