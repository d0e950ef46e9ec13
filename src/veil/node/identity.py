"""A node's Ed25519 identity, kept in ``DATA/identity.key`` (magic ``VLID``, version 1, seed)."""

from __future__ import annotations

from pathlib import Path

from veil.crypto.sign import SigningKey
from veil.durable import write_atomic
from veil.errors import IntegrityError

MAGIC = b"VLID\x01"


def load_or_create(path: Path) -> SigningKey:
    if path.exists():
        raw = path.read_bytes()
        if len(raw) != len(MAGIC) + 32 or not raw.startswith(MAGIC):
            raise IntegrityError(f"{path} is not a Veil identity file")
        return SigningKey(raw[len(MAGIC):])
    key = SigningKey.generate()
    write_atomic(path, MAGIC + key.seed, 0o600, exclusive=True)
    return key
