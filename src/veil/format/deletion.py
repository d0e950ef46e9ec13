"""Deletion keys (docs/specs/caps.md, "Deletion keys"), pure: no I/O.

    deletion secret  32 random bytes kept by the uploader ($VEIL_HOME/delete.key, or a browser's
                     per-upload random key)
    deletion key     H("veil/delete-key/v1", secret || storage index)        (32 bytes)
    commitment       H("veil/delete-commitment/v1", deletion key)           (32 bytes, in the manifest)

The read and verify caps hold neither the secret nor the key, only the storage index and the
manifest hash, so no cap holder can delete; a node checks a presented key against the
commitment in the slot's manifest, which the cap's manifest hash authenticates.
"""

from __future__ import annotations

import hmac

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.errors import UsageError

KEY_SIZE = 32
_key = TaggedHash(labels.DELETE_KEY)
_commit = TaggedHash(labels.DELETE_COMMITMENT)


def deletion_key(secret: bytes, si: bytes) -> bytes:
    """This file's deletion key, from the uploader's secret and the file's storage index."""
    if len(secret) != KEY_SIZE:
        raise UsageError("a deletion secret is 32 bytes")
    return _key(secret, si)


def deletion_commitment(key: bytes) -> bytes:
    return _commit(key)


def key_matches(key: bytes, commitment: bytes | None) -> bool:
    """Whether ``key`` opens ``commitment`` (constant time; never for a file without one)."""
    return commitment is not None and len(key) == KEY_SIZE and hmac.compare_digest(_commit(key), commitment)


def parse_deletion_key(text: str) -> bytes:
    """A deletion key as `veil put --json` prints it (64 hex digits)."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != KEY_SIZE:
        raise UsageError("a deletion key is 64 hex digits (from `veil put --json`, field delete_key)")
    return raw
