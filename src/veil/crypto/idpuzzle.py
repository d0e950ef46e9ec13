"""The node-id puzzle (S/Kademlia's static puzzle): what makes a position in the id space cost work.

A node id is ``SHA-256(public key)`` as before; it is *valid* on a network of difficulty ``B``
when ``TaggedHash("veil/node-id-puzzle/v1")(id)`` starts with at least ``B`` zero bits. Anyone
can check that from the id alone (no key, no nonce, no ledger), so every place an id arrives
from a stranger (a routing-table insert, a contact in a FIND_NODE answer, a record, a placement
candidate) checks it for the price of one hash. Making a valid id costs ``2^B`` key generations
on average, and an id that is valid *and* lands within ``m`` bits of a chosen key costs
``2^(B+m)``: the puzzle multiplies the price of every position (docs/specs/dht.md, "Ids cost
work").
"""

from __future__ import annotations

import os
from collections.abc import Callable

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sign import SEED_SIZE, SigningKey, node_id
from veil.errors import IntegrityError

# The network default (docs/specs/dht.md): ~2^20 key generations, about 24 CPU-seconds here.
DEFAULT_ID_BITS = 20
# `veil devnet` and the test networks: 256 key generations, a few milliseconds per node.
DEVNET_ID_BITS = 8
MAX_ID_BITS = 40

_h = TaggedHash(labels.NODE_ID_PUZZLE)


def puzzle_bits(nid: bytes) -> int:
    """How many leading zero bits the puzzle hash of node id ``nid`` has (0..256)."""
    value = int.from_bytes(_h(nid), "big")
    return 256 - value.bit_length()


def valid_id(nid: bytes, bits: int) -> bool:
    """Whether ``nid`` solves the puzzle at difficulty ``bits`` (any id does at 0)."""
    return bits <= 0 or puzzle_bits(nid) >= bits


def require_valid_id(nid: bytes, bits: int) -> None:
    if not valid_id(nid, bits):
        raise IntegrityError(f"node id {nid.hex()[:16]}… does not solve the id puzzle ({bits} bits)")


def check_bits(bits: int) -> int:
    if not 0 <= bits <= MAX_ID_BITS:
        raise ValueError(f"the id puzzle difficulty must be 0..{MAX_ID_BITS} bits, not {bits}")
    return bits


def _fresh_key() -> SigningKey:
    # One key derivation per try (SigningKey.generate derives twice: nacl's generate, then the seed).
    return SigningKey(os.urandom(SEED_SIZE))


def grind_key(bits: int, generate: Callable[[], SigningKey] = _fresh_key) -> tuple[SigningKey, int]:
    """A fresh key whose node id solves the puzzle at ``bits``, and how many keys it took."""
    check_bits(bits)
    tries = 0
    while True:
        key = generate()
        tries += 1
        if valid_id(node_id(key.public_key), bits):
            return key, tries
