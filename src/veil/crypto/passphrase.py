"""Seal a small secret under a passphrase: argon2id (memory-hard) then AES-256-GCM.

Layout (all integers big-endian)::

    magic "VLPW" | version u8 = 1 | t_cost u32 | m_cost_kib u32 | parallelism u8
    | salt 16 | nonce 12 | ciphertext+tag

The whole header is the AEAD's associated data together with the caller's ``context``
label, so no parameter can be changed without the open failing. Cost parameters read from
a file are bounded before argon2 runs (``MAX_M_COST_KIB`` = 256 MiB, ``MAX_T_COST`` = 16,
``MAX_PARALLELISM`` = 8, and t × m at most 16 passes over 64 MiB), so a crafted file cannot
make us allocate gigabytes or spin for minutes: it gets one clear IntegrityError, as does
every other failure (wrong passphrase, tampering, truncation). ``seal`` refuses the same
range, so everything it writes can be opened again.
"""

from __future__ import annotations

import os
import struct

from argon2.low_level import Type, hash_secret_raw

from veil.crypto.aead import NONCE_SIZE, Aead
from veil.errors import IntegrityError

MAGIC = b"VLPW"
VERSION = 1
SALT_SIZE = 16
_HEADER = struct.Struct(">4sBIIB")
HEADER_SIZE = _HEADER.size + SALT_SIZE + NONCE_SIZE

# OWASP's argon2id recommendation (m=64 MiB, t=3, p=1); tests may ask for less.
DEFAULT_T_COST = 3
DEFAULT_M_COST_KIB = 64 * 1024
DEFAULT_PARALLELISM = 1
MAX_T_COST = 16
MAX_M_COST_KIB = 256 * 1024
MAX_PARALLELISM = 8
MAX_WORK_KIB = 16 * DEFAULT_M_COST_KIB  # t × m: the time an open may take, in KiB-passes
_MAX_SECRET = 1 << 20


def cost_in_bounds(t: int, m: int, p: int) -> bool:
    """Argon2id costs a sealed object may ask for (argon2 itself needs m >= 8p)."""
    return 1 <= t <= MAX_T_COST and 1 <= p <= MAX_PARALLELISM and 8 * p <= m <= MAX_M_COST_KIB and t * m <= MAX_WORK_KIB


def _derive(passphrase: str, salt: bytes, t: int, m: int, p: int) -> bytes:
    return bytes(
        hash_secret_raw(passphrase.encode("utf-8"), salt, time_cost=t, memory_cost=m, parallelism=p, hash_len=32, type=Type.ID)
    )


def seal(
    passphrase: str,
    secret: bytes,
    context: bytes,
    t_cost: int = DEFAULT_T_COST,
    m_cost_kib: int = DEFAULT_M_COST_KIB,
    parallelism: int = DEFAULT_PARALLELISM,
) -> bytes:
    """Encrypt ``secret`` under ``passphrase``; ``context`` (a label) must be given again to open."""
    if len(secret) > _MAX_SECRET:
        raise ValueError("secret too large")
    if not cost_in_bounds(t_cost, m_cost_kib, parallelism):
        raise ValueError("argon2 cost parameters out of range")
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    header = _HEADER.pack(MAGIC, VERSION, t_cost, m_cost_kib, parallelism) + salt + nonce
    key = _derive(passphrase, salt, t_cost, m_cost_kib, parallelism)
    return header + Aead(key).seal(nonce, secret, context + header)


def open_sealed(passphrase: str, blob: bytes, context: bytes) -> bytes:
    """Decrypt what ``seal`` made; IntegrityError on a wrong passphrase or any damage."""
    if len(blob) < HEADER_SIZE + 16 or len(blob) > HEADER_SIZE + 16 + _MAX_SECRET:
        raise IntegrityError("not a passphrase-sealed object (bad size)")
    magic, version, t, m, p = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise IntegrityError("not a passphrase-sealed object (bad magic)")
    if version != VERSION:
        raise IntegrityError(f"passphrase-sealed object version {version} is not supported")
    if not cost_in_bounds(t, m, p):
        raise IntegrityError(
            f"passphrase-sealed object asks for argon2 costs out of range (t={t}, m={m} KiB, p={p}; at most "
            f"t={MAX_T_COST}, m={MAX_M_COST_KIB} KiB, p={MAX_PARALLELISM}): refusing to run it"
        )
    salt = blob[_HEADER.size : _HEADER.size + SALT_SIZE]
    nonce = blob[_HEADER.size + SALT_SIZE : HEADER_SIZE]
    key = _derive(passphrase, salt, t, m, p)
    try:
        return Aead(key).open(nonce, blob[HEADER_SIZE:], context + blob[:HEADER_SIZE])
    except IntegrityError as e:
        raise IntegrityError("wrong passphrase, or the file is damaged") from e
