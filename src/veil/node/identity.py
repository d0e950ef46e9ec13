"""A node's Ed25519 identity, kept in ``DATA/identity.key`` (magic ``VLID``, version 1, seed)."""

from __future__ import annotations

import os
from pathlib import Path

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError

MAGIC = b"VLID\x01"


def load_or_create(path: Path) -> SigningKey:
    if path.exists():
        raw = path.read_bytes()
        if len(raw) != len(MAGIC) + 32 or not raw.startswith(MAGIC):
            raise IntegrityError(f"{path} is not a Veil identity file")
        return SigningKey(raw[len(MAGIC):])
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(MAGIC + key.seed)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key
