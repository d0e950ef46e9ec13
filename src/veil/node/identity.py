"""A node's Ed25519 identity, kept in ``DATA/identity.key`` (magic ``VLID``, version 1, seed).

A new identity is ground until its node id solves the network's id puzzle
(veil.crypto.idpuzzle, docs/specs/dht.md "Ids cost work"); an existing one that does not
solve it is refused, because every peer would ignore it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from veil.crypto.idpuzzle import grind_key, puzzle_bits
from veil.crypto.sign import SigningKey, node_id
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError

MAGIC = b"VLID\x01"
log = logging.getLogger(__name__)


def load_or_create(path: Path, id_bits: int = 0) -> SigningKey:
    """The identity at ``path``; a new one solving an ``id_bits`` puzzle if there is none."""
    if path.exists():
        raw = path.read_bytes()
        if len(raw) != len(MAGIC) + 32 or not raw.startswith(MAGIC):
            raise IntegrityError(f"{path} is not a Veil identity file")
        key = SigningKey(raw[len(MAGIC):])
        have = puzzle_bits(node_id(key.public_key))
        if have < id_bits:
            raise UsageError(
                f"{path}: this node id solves a {have}-bit id puzzle and the network asks {id_bits} "
                "(--id-bits); peers would ignore it: start from a new data directory"
            )
        return key
    t0 = time.monotonic()
    key, tries = grind_key(id_bits)
    if id_bits:
        log.info("node id ground: %d keys for a %d-bit puzzle in %.1f s", tries, id_bits, time.monotonic() - t0)
    write_atomic(path, MAGIC + key.seed, 0o600, exclusive=True)
    return key
