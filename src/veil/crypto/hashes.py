"""Tagged SHA-256: ``H(label, msg) = SHA-256(len(label) || label || msg)``.

The label prefix is hashed once per label and copied per use, so tagging costs nothing on
hot paths.
"""

from __future__ import annotations

import hashlib
from typing import Any

DIGEST_SIZE = 32


class TaggedHash:
    """A reusable SHA-256 prefixed with one label."""

    __slots__ = ("_base", "label")

    def __init__(self, label: bytes) -> None:
        if not 0 < len(label) < 256:
            raise ValueError("label must be 1..255 bytes")
        self.label = label
        self._base = hashlib.sha256(bytes([len(label)]) + label)

    def new(self) -> Any:
        """A fresh hash object already fed with the label prefix."""
        return self._base.copy()

    def __call__(self, *parts: bytes | bytearray | memoryview) -> bytes:
        h = self._base.copy()
        for p in parts:
            h.update(p)
        return h.digest()


def tagged_hash(label: bytes, *parts: bytes | bytearray | memoryview) -> bytes:
    """One-shot tagged hash; prefer a module-level TaggedHash on hot paths."""
    return TaggedHash(label)(*parts)


def sha256(data: bytes | bytearray | memoryview) -> bytes:
    """Plain SHA-256 (for node ids as DESIGN.md defines them, and certificate pins)."""
    return hashlib.sha256(data).digest()
