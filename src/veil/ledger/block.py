"""Blocks: a header over an ordered list of transactions, certified by a majority of validators.

Header (canonical CBOR map, version 2): ``m`` = "veil-block", ``v`` = 2, chain (the chain id:
genesis hash hex), height (>= 1; genesis is height 0), prev (hash of the previous header, or
the genesis hash), time (unix seconds, never decreasing), ntx, txroot (Merkle root over the
transaction ids), state (the state hash after the block, see state.py), vset (hash of the
validator set that must sign this block: the set in force when the block starts) and roots
(a map from a commitment's name to a 32-byte root; empty in v2, reserved for commitments that
support proofs, such as a names root; every key is covered by the signatures, and a reader
checks the roots it knows and reports the others as unchecked).
Block hash = ``H("veil/block/v2", header bytes)``.

Certificate: ``[[validator public key, signature], ...]`` sorted by key, each signature Ed25519
over ``len(label) || "veil/block-sig/v2" || header bytes``; a block is final when more than half
of the set named by ``vset`` signed it.

Merkle tree: leaf = ``H("veil/tx-leaf/v1", txid)``, node = ``H("veil/tx-node/v1", l || r)``,
an odd node at the end of a level moves up unchanged; the empty tree's root is
``H("veil/tx-leaf/v1")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey
from veil.errors import IntegrityError, LedgerError
from veil.format import cbor
from veil.ledger.envelope import sig_prefix, want_bytes, want_fields, want_int
from veil.ledger.state import ValidatorSet

MAGIC = "veil-block"
VERSION = 2
MAX_HEADER_SIZE = 4096
MAX_ROOTS = 16
MAX_BLOCK_TXS = 100_000
_SIG_PREFIX = sig_prefix(labels.BLOCK_SIG)
_H_BLOCK = TaggedHash(labels.BLOCK_HASH)
_H_LEAF = TaggedHash(labels.TX_LEAF)
_H_NODE = TaggedHash(labels.TX_NODE)
_FIELDS = frozenset({"m", "v", "chain", "height", "prev", "time", "ntx", "txroot", "state", "vset", "roots"})


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
    chain: str
    height: int
    prev: bytes
    time: int
    ntx: int
    txroot: bytes
    state: bytes
    vset: bytes
    roots: tuple[tuple[str, bytes], ...]

    @property
    def hash(self) -> bytes:
        return _H_BLOCK(self.raw)

    def sign(self, key: SigningKey) -> bytes:
        return key.sign(_SIG_PREFIX + self.raw)

    def signed_by(self, pub: bytes, sig: bytes) -> bool:
        return verify_fast(pub, _SIG_PREFIX + self.raw, sig)

    def check_certificate(self, vset: ValidatorSet, sigs: Sequence[tuple[bytes, bytes]]) -> int:
        """Count valid signatures of distinct members of ``vset``; LedgerError unless a majority."""
        if vset.hash != self.vset:
            raise LedgerError(f"block {self.height} names another validator set", "bad_block")
        good = {pub for pub, sig in sigs if pub in vset.keys and self.signed_by(pub, sig)}
        if len(good) < vset.quorum:
            raise LedgerError(f"block {self.height} carries {len(good)} valid validator signatures; "
                              f"{vset.quorum} of {len(vset.members)} needed", "bad_signature")  # fmt: skip
        return len(good)

    def to_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "hash": self.hash.hex(),
            "prev": self.prev.hex(),
            "time": self.time,
            "ntx": self.ntx,
            "txroot": self.txroot.hex(),
            "state": self.state.hex(),
            "vset": self.vset.hex(),
        }


def make_header(chain: str, height: int, prev: bytes, time: int, txids: Sequence[bytes], state: bytes, vset: bytes,
                roots: Mapping[str, bytes] | None = None) -> BlockHeader:  # fmt: skip
    body = {
        "m": MAGIC,
        "v": VERSION,
        "chain": chain,
        "height": height,
        "prev": prev,
        "time": time,
        "ntx": len(txids),
        "txroot": merkle_root(txids),
        "state": state,
        "vset": vset,
        "roots": dict(roots or {}),
    }
    return decode_header(cbor.encode(body))


def decode_header(raw: bytes) -> BlockHeader:
    what = "block header"
    if len(raw) > MAX_HEADER_SIZE:
        raise LedgerError(f"{what} is {len(raw)} bytes, over the {MAX_HEADER_SIZE}-byte limit", "oversized")
    try:
        m = cbor.decode(raw, MAX_HEADER_SIZE)
    except IntegrityError as e:
        raise LedgerError(f"{what}: {e}", "malformed") from e
    if not isinstance(m, dict) or m.get("m") != MAGIC:
        raise LedgerError(f"{what}: not a Veil block header", "malformed")
    if m.get("v") != VERSION:
        raise LedgerError(f"{what}: version {m.get('v')!r} is not supported", "malformed")
    want_fields(m, what, _FIELDS)
    chain = m["chain"]
    if not isinstance(chain, str) or not 0 < len(chain) <= 64:
        raise LedgerError("block header: bad chain id", "malformed")
    roots = m["roots"]
    if not isinstance(roots, dict) or len(roots) > MAX_ROOTS or not all(
        isinstance(k, str) and 0 < len(k) <= 32 and isinstance(v, bytes) and len(v) == 32 for k, v in roots.items()
    ):
        raise LedgerError("block header: roots must map names to 32-byte roots", "malformed")
    return BlockHeader(
        raw=raw,
        chain=chain,
        height=want_int(m, "height", what, 1),
        prev=want_bytes(m, "prev", what, 32),
        time=want_int(m, "time", what),
        ntx=want_int(m, "ntx", what, 0, MAX_BLOCK_TXS),
        txroot=want_bytes(m, "txroot", what, 32),
        state=want_bytes(m, "state", what, 32),
        vset=want_bytes(m, "vset", what, 32),
        roots=tuple(sorted(roots.items())),
    )


def encode_sigs(sigs: Mapping[bytes, bytes]) -> bytes:
    """A block's certificate: ``[[key, signature], ...]`` sorted by key."""
    return cbor.encode([[k, v] for k, v in sorted(sigs.items())])


def decode_sigs(raw: bytes) -> list[tuple[bytes, bytes]]:
    try:
        v = cbor.decode(raw, 64 * 1024)
    except IntegrityError as e:
        raise LedgerError(f"block certificate: {e}", "malformed") from e
    if not isinstance(v, list) or len(v) > 64 or not all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], bytes) and len(x[0]) == PUBLIC_KEY_SIZE
        and isinstance(x[1], bytes) and len(x[1]) == SIGNATURE_SIZE for x in v
    ):
        raise LedgerError("block certificate must be [[key, signature], ...]", "malformed")
    return [(x[0], x[1]) for x in v]


def encode_body(txs: Sequence[bytes]) -> bytes:
    """A block's transactions on the wire and on disk: a CBOR array of transaction bytes."""
    return cbor.encode(list(txs))


def decode_body(raw: bytes, max_size: int = 64 << 20) -> list[bytes]:
    try:
        v = cbor.decode(raw, max_size)
    except IntegrityError as e:
        raise LedgerError(f"block body: {e}", "malformed") from e
    if not isinstance(v, list) or len(v) > MAX_BLOCK_TXS or not all(isinstance(t, bytes) for t in v):
        raise LedgerError("block body must be an array of transactions", "malformed")
    return v
