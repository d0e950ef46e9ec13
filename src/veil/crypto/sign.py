"""Ed25519 signing keys: one verifier everywhere (libsodium via PyNaCl).

Node ids are ``SHA-256(public key)`` (DESIGN.md, "Identity and transport"); an id counts on a
network only if it solves that network's id puzzle (veil.crypto.idpuzzle).
"""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

from veil.crypto.hashes import sha256
from veil.errors import IntegrityError

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


class SigningKey:
    """An Ed25519 private key (from a 32-byte seed)."""

    __slots__ = ("_sk", "public_key", "seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self.seed = bytes(seed)
        self._sk = nacl.signing.SigningKey(self.seed)
        self.public_key = bytes(self._sk.verify_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._sk.sign(message).signature)


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise IntegrityError unless ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise IntegrityError("bad signature")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError) as e:
        raise IntegrityError("bad signature") from e


def is_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        verify(public_key, message, signature)
    except IntegrityError:
        return False
    return True


def node_id(public_key: bytes) -> bytes:
    """A node's id: SHA-256 of its Ed25519 public key, so a node cannot choose its id."""
    return sha256(public_key)
