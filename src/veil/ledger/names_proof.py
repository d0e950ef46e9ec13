"""A name lookup's answer and its check: the record(s) with Merkle proofs against the names root
of a block header certified by the validators (names.md, "Verifiable resolution"). Pure.

Answer (a CBOR map): ``{"name", "height", "header" (bytes), "sigs" (the block's certificate),
"entries": [[name, record bytes | null, [siblings, other | null]], ...]}``; ``entries`` holds the
name and, for a subname, its parent (a subname lives only while its parent's registration does).

The resolver accepts it only if the header is for its chain, carries valid signatures from a
majority of the validators the resolver trusts (their node ids: the pinned endpoints), is not
older than the newest final height it has already seen (``min_height``; an old block could
show a record since changed), and every entry's proof leads to that header's names root.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from veil.crypto.sign import node_id
from veil.errors import IntegrityError, LedgerError
from veil.ledger.block import BlockHeader, decode_header, decode_sigs
from veil.ledger.names import NameRec, check_name, live, name_key, parent_of, record_hash_of
from veil.ledger.names_tree import KEY_BITS, NameTree, Proof, check_proof

ROOT_NAME = "names"
MAX_ANSWER = 64 << 10

ACTIVE, EXPIRED, UNREGISTERED = "active", "expired", "unregistered"


@dataclass(frozen=True)
class Resolution:
    """What a checked answer says about a name at a certified block."""

    name: str
    status: str  # active | expired | unregistered
    record: NameRec | None  # the name's own record (present for active and expired)
    height: int
    time: int  # the block's time: the status holds at it
    expires: int  # a top-level name's expiry, or the parent's for a subname (0: none)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def get(self, rk: str) -> Any:
        return None if self.record is None or not self.active else self.record.get(rk)


def names_root(header: BlockHeader) -> bytes | None:
    return dict(header.roots).get(ROOT_NAME)


def lookup_names(name: str) -> list[str]:
    """The names an answer for ``name`` must prove: the name, then its parent if it is a subname."""
    parent = parent_of(name)
    return [name] if parent is None else [name, parent]


def build_answer(name: str, header: bytes, sigs: bytes, tree: NameTree, records: Sequence[bytes | None]) -> dict[str, Any]:
    """The validator side: ``records`` are the encoded records of ``lookup_names(name)`` (None: absent)."""
    entries = [[n, r, tree.prove(name_key(n)).to_wire()] for n, r in zip(lookup_names(name), records, strict=True)]
    return {"name": name, "height": decode_header(header).height, "header": header, "sigs": sigs, "entries": entries}


def _bad(why: str) -> IntegrityError:
    return IntegrityError(f"name answer refused: {why}")


def _proof(v: Any) -> Proof:
    if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], list) and len(v[0]) <= KEY_BITS
            and all(isinstance(s, bytes) and len(s) == 32 for s in v[0])):  # fmt: skip
        raise _bad("malformed proof")
    other = v[1]
    if other is not None and not (isinstance(other, list) and len(other) == 2
                                  and all(isinstance(x, bytes) and len(x) == 32 for x in other)):  # fmt: skip
        raise _bad("malformed proof")
    return Proof(tuple(v[0]), None if other is None else (other[0], other[1]))


def check_certificate(header: BlockHeader, sigs: Iterable[tuple[bytes, bytes]], trusted: frozenset[bytes]) -> int:
    """Valid signatures on ``header`` from distinct validators whose node ids are ``trusted``;
    IntegrityError unless they are a majority of ``trusted``."""
    need = len(trusted) // 2 + 1
    good: set[bytes] = set()
    for pub, sig in sigs:  # stop at a majority: each signature check is the costly part of a lookup
        if len(good) >= need:
            break
        if pub not in good and node_id(pub) in trusted and header.signed_by(pub, sig):
            good.add(pub)
    if len(good) < need:
        raise _bad(f"block {header.height} carries {len(good)} valid signatures of the validators this client "
                   f"trusts; {need} of {len(trusted)} needed")  # fmt: skip
    return len(good)


def verify_answer(answer: Any, name: str, chain: str, trusted: frozenset[bytes], min_height: int = 0,
                  certified: dict[bytes, BlockHeader] | None = None) -> Resolution:  # fmt: skip
    """Check an answer for ``name``; IntegrityError (one clear line) when anything is off.

    ``certified`` (optional, the caller's cache) maps header bytes whose certificate this client
    already checked against the same ``trusted`` set to the decoded header: they are not decoded
    or checked again."""
    check_name(name)
    if not isinstance(answer, dict) or not all(isinstance(answer.get(k), bytes) for k in ("header", "sigs")):
        raise _bad("malformed answer")
    header = certified.get(answer["header"]) if certified is not None else None
    if header is None:
        try:
            header = decode_header(answer["header"])
            sigs = decode_sigs(answer["sigs"])
        except LedgerError as e:
            raise _bad(str(e)) from e
        if header.chain != chain:
            raise _bad("the block is from another chain")
        check_certificate(header, sigs, trusted)
        if certified is not None:
            if len(certified) >= 256:
                certified.clear()
            certified[header.raw] = header
    if header.height < min_height:
        raise _bad(f"stale block {header.height}: this client has already seen final height {min_height}")
    root = names_root(header)
    if root is None:
        raise _bad(f"block {header.height} commits to no names root")
    entries = answer.get("entries")
    want = lookup_names(name)
    if not isinstance(entries, list) or len(entries) != len(want):
        raise _bad("malformed answer")
    recs: list[NameRec | None] = []
    for n, ent in zip(want, entries, strict=True):
        if not (isinstance(ent, list) and len(ent) == 3 and ent[0] == n and (ent[1] is None or isinstance(ent[1], bytes))):
            raise _bad(f"the answer is not about {n}.veil")
        raw = ent[1]
        if not check_proof(root, name_key(n), None if raw is None else record_hash_of(raw), _proof(ent[2])):
            raise _bad(f"the proof for {n}.veil does not match block {header.height}'s names root")
        try:
            recs.append(None if raw is None else NameRec.decode(raw))
        except LedgerError as err:  # committed by the validators, yet not a record this client reads
            raise _bad(str(err)) from err
    rec = recs[0]
    parent = recs[1] if len(recs) > 1 else None
    if rec is None:
        status = UNREGISTERED
    else:
        status = ACTIVE if live(rec, parent, header.time) else EXPIRED
    expires = rec.expires if rec is not None and rec.expires else (parent.expires if parent is not None else 0)
    return Resolution(name, status, rec, header.height, header.time, expires)
