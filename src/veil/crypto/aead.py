"""AES-256-GCM with caller-supplied output buffers, so hot paths allocate nothing.

All failures collapse into veil.errors.IntegrityError.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veil.errors import IntegrityError

TAG_SIZE = 16
NONCE_SIZE = 12
KEY_SIZE = 32


class Aead:
    """AES-256-GCM under one key."""

    __slots__ = ("_aes",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aes = AESGCM(key)

    def seal_into(self, nonce: bytes, plaintext: bytes | memoryview, aad: bytes, out: bytearray | memoryview) -> int:
        """Write ciphertext||tag into ``out`` (exactly len(plaintext)+16 bytes); return that length."""
        self._aes.encrypt_into(nonce, plaintext, aad, out)
        return len(plaintext) + TAG_SIZE

    def open_into(self, nonce: bytes, ciphertext: bytes | memoryview, aad: bytes, out: bytearray | memoryview) -> int:
        """Write the plaintext into ``out`` (exactly len(ciphertext)-16 bytes); return that length."""
        try:
            self._aes.decrypt_into(nonce, ciphertext, aad, out)
        except (InvalidTag, ValueError) as e:
            raise IntegrityError("decryption failed: wrong key or corrupted data") from e
        return len(ciphertext) - TAG_SIZE

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aes.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aes.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError) as e:
            raise IntegrityError("decryption failed: wrong key or corrupted data") from e
