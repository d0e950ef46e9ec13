"""256-bit DHT ids, XOR distance, bucket indexes, and the contact (id + address) of a node.

Node ids are SHA-256 of the node's Ed25519 public key (veil.crypto.sign.node_id); record keys
(storage indexes) live in the same 256-bit space. Internally ids are also kept as ints, because
XOR and bit_length on ints are what every hot path needs.
Imports nothing from Veil.
"""

from __future__ import annotations

from collections.abc import Callable

ID_BITS = 256
ID_BYTES = ID_BITS // 8
MAX_ADDRESS_LEN = 255


def to_int(node_id: bytes) -> int:
    if len(node_id) != ID_BYTES:
        raise ValueError(f"a DHT id is {ID_BYTES} bytes, not {len(node_id)}")
    return int.from_bytes(node_id, "big")


def from_int(value: int) -> bytes:
    return value.to_bytes(ID_BYTES, "big")


def distance(a: bytes, b: bytes) -> int:
    """XOR distance of two ids, as an integer."""
    return to_int(a) ^ to_int(b)


def bucket_index(own: int, other: int) -> int:
    """Index of the k-bucket ``other`` falls in for a table owned by ``own``: the position of the
    highest differing bit (0 = nearest, 255 = the far half of the space); -1 when equal."""
    return (own ^ other).bit_length() - 1


def random_id_in_bucket(own: bytes, index: int, getrandbits: Callable[[int], int]) -> bytes:
    """A random id whose bucket index relative to ``own`` is ``index`` (for bucket refreshes)."""
    if not 0 <= index < ID_BITS:
        raise ValueError("bucket index out of range")
    low = getrandbits(index) if index else 0
    return from_int(to_int(own) ^ ((1 << index) | low))


class Contact:
    """How to reach a node: its id and its ``host:port`` address.

    A contact is only as trustworthy as where it came from: the transport pins the node id
    when connecting, so a wrong address costs a failed request, never a wrong peer.
    """

    __slots__ = ("address", "key", "node_id")

    node_id: bytes
    address: str
    key: int

    def __init__(self, node_id: bytes, address: str) -> None:
        if len(address) > MAX_ADDRESS_LEN:
            raise ValueError("address too long")
        self.node_id = bytes(node_id)
        self.address = address
        self.key = to_int(self.node_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Contact) and other.key == self.key and other.address == self.address

    def __hash__(self) -> int:
        return hash((self.key, self.address))

    def __repr__(self) -> str:
        return f"Contact({self.node_id.hex()[:12]}…, {self.address!r})"
