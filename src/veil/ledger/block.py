"""Blocks: a signed header over an ordered list of transactions.

Header body (canonical CBOR map): chain, height (>= 1; genesis is height 0), prev (hash of
the previous header, or the genesis hash), time (unix seconds, never decreasing), ntx,
txroot (Merkle root over the transaction ids), state (the state hash after the block, see
state.py) and validator (the signer's Ed25519 public key). Wire: envelope
``["veil-block", 1, body, sig]``; block hash = ``H("veil/block/v1", body)``.

Merkle tree: leaf = ``H("veil/tx-leaf/v1", txid)``, node = ``H("veil/tx-node/v1", l || r)``,
an odd node at the end of a level moves up unchanged; the empty tree's root is
``H("veil/tx-leaf/v1")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import PUBLIC_KEY_SIZE, SigningKey
from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger.envelope import open_envelope, seal, sig_prefix, want_bytes, want_fields, want_int

MAGIC = "veil-block"
VERSION = 1
MAX_HEADER_SIZE = 1024
MAX_BLOCK_TXS = 100_000
_SIG_PREFIX = sig_prefix(labels.BLOCK_SIG)
_H_BLOCK = TaggedHash(labels.BLOCK_HASH)
_H_LEAF = TaggedHash(labels.TX_LEAF)
_H_NODE = TaggedHash(labels.TX_NODE)
_FIELDS = frozenset({"chain", "height", "prev", "time", "ntx", "txroot", "state", "validator"})


def merkle_root(txids: Sequence[bytes]) -> bytes:
    if not txids:
        return _H_LEAF()
    level = [_H_LEAF(t) for t in txids]
    while len(level) > 1:
        nxt = [_H_NODE(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@dataclass(frozen=True, slots=True)
class BlockHeader:
    raw: bytes
    body: bytes
    sig: bytes
    chain: str
    height: int
    prev: bytes
    time: int
    ntx: int
    txroot: bytes
    state: bytes
    validator: bytes

    @property
    def hash(self) -> bytes:
        return _H_BLOCK(self.body)

    def verify(self, validator_pub: bytes) -> None:
        if self.validator != validator_pub:
            raise LedgerError(f"block {self.height} is signed by an unknown validator", "bad_signature")
        if not verify_fast(validator_pub, _SIG_PREFIX + self.body, self.sig):
            raise LedgerError(f"block {self.height}: validator signature does not verify", "bad_signature")

    def to_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "hash": self.hash.hex(),
            "prev": self.prev.hex(),
            "time": self.time,
            "ntx": self.ntx,
            "txroot": self.txroot.hex(),
            "state": self.state.hex(),
        }


def make_header(
    key: SigningKey, chain: str, height: int, prev: bytes, time: int, txids: Sequence[bytes], state: bytes
) -> BlockHeader:
    body = {
        "chain": chain,
        "height": height,
        "prev": prev,
        "time": time,
        "ntx": len(txids),
        "txroot": merkle_root(txids),
        "state": state,
        "validator": key.public_key,
    }
    raw, _, _ = seal(MAGIC, VERSION, body, key, labels.BLOCK_SIG)
    return decode_header(raw)


def decode_header(raw: bytes) -> BlockHeader:
    what = "block header"
    m, body, sig = open_envelope(raw, MAGIC, VERSION, MAX_HEADER_SIZE, what)
    want_fields(m, what, _FIELDS)
    chain = m["chain"]
    if not isinstance(chain, str) or not 0 < len(chain) <= 64:
        raise LedgerError("block header: bad chain id", "malformed")
    return BlockHeader(
        raw=raw,
        body=body,
        sig=sig,
        chain=chain,
        height=want_int(m, "height", what, 1),
        prev=want_bytes(m, "prev", what, 32),
        time=want_int(m, "time", what),
        ntx=want_int(m, "ntx", what, 0, MAX_BLOCK_TXS),
        txroot=want_bytes(m, "txroot", what, 32),
        state=want_bytes(m, "state", what, 32),
        validator=want_bytes(m, "validator", what, PUBLIC_KEY_SIZE),
    )


def encode_body(txs: Sequence[bytes]) -> bytes:
    """A block's transactions on the wire and on disk: a CBOR array of transaction bytes."""
    return cbor.encode(list(txs))


def decode_body(raw: bytes, max_size: int = 64 << 20) -> list[bytes]:
    from veil.errors import IntegrityError

    try:
        v = cbor.decode(raw, max_size)
    except IntegrityError as e:
        raise LedgerError(f"block body: {e}", "malformed") from e
    if not isinstance(v, list) or len(v) > MAX_BLOCK_TXS or not all(isinstance(t, bytes) for t in v):
        raise LedgerError("block body must be an array of transactions", "malformed")
    return v
