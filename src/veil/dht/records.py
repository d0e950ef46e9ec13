"""Signed DHT records: node records (who a node is and where) and provider records (which node
holds shares of a storage index).

A record is a canonical CBOR map that starts with ``magic`` and ``v`` and ends with ``sig``, an
Ed25519 signature by the record's author over the tagged hash of the map without ``sig``
(labels DHT_NODE_RECORD / DHT_PROVIDER_RECORD, so one kind can never pass for the other).
``id`` must equal SHA-256(``pk``): a node cannot claim an id it has no key for. Decoding checks,
cheapest first: size, CBOR canonical form, magic, version, kind, field schema, id binding,
expiry window, signature. Any failure is an IntegrityError; nothing half-checked escapes.
Imports from: veil.errors, veil.crypto, veil.format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.crypto import labels
from veil.crypto.hashes import TaggedHash
from veil.crypto.idpuzzle import valid_id
from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey, node_id
from veil.dht.ids import ID_BYTES, MAX_ADDRESS_LEN, Contact
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.fields import get_bytes, get_int, get_str, require_map

MAGIC = "veil/dht-record"
VERSION = 1
MAX_RECORD_SIZE = 1024
MAX_TTL = 48 * 3600  # seconds; a record claiming to live longer is refused
MAX_SHARES = 256

_NODE_HASH = TaggedHash(labels.DHT_NODE_RECORD)
_PROVIDER_HASH = TaggedHash(labels.DHT_PROVIDER_RECORD)
_NODE_FIELDS = {"magic", "v", "kind", "id", "pk", "addr", "exp", "sig"}
_PROVIDER_FIELDS = _NODE_FIELDS | {"key", "shares"}
MAX_OPERATOR_LEN = 64
_OPERATOR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


def check_operator(label: str) -> str:
    """An operator label as nodes declare and network files name it: 1..64 of [a-z0-9._-]."""
    if not 0 < len(label) <= MAX_OPERATOR_LEN or not set(label) <= _OPERATOR_CHARS:
        raise ValueError(f"an operator label is 1..{MAX_OPERATOR_LEN} characters of a-z 0-9 . _ -: {label[:80]!r}")
    return label


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node's signed statement of its public key and address, valid until ``expires``."""

    node_id: bytes
    public_key: bytes
    address: str
    expires: int
    signature: bytes
    raw: bytes  # the exact signed encoding, passed on unchanged
    operator: str = ""  # the operator/family label the node declares (``op``; empty: none)

    @property
    def contact(self) -> Contact:
        return Contact(self.node_id, self.address)


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """A node's signed statement that it holds ``shares`` of storage index ``key`` until ``expires``."""

    key: bytes
    provider_id: bytes
    public_key: bytes
    address: str
    shares: tuple[int, ...]
    expires: int
    signature: bytes
    raw: bytes

    @property
    def contact(self) -> Contact:
        return Contact(self.provider_id, self.address)


Record = NodeRecord | ProviderRecord


def _body_node(pk: bytes, address: str, expires: int) -> dict[str, Any]:
    return {"magic": MAGIC, "v": VERSION, "kind": "node", "id": node_id(pk), "pk": pk, "addr": address, "exp": expires}


def _body_provider(key: bytes, pk: bytes, address: str, shares: tuple[int, ...], expires: int) -> dict[str, Any]:
    body = _body_node(pk, address, expires)
    body.update(kind="provider", key=key, shares=list(shares))
    return body


def _check_address(address: str) -> None:
    if not 0 < len(address) <= MAX_ADDRESS_LEN:
        raise ValueError(f"an address is 1..{MAX_ADDRESS_LEN} characters")


def _check_shares(shares: tuple[int, ...]) -> None:
    if len(shares) > MAX_SHARES or list(shares) != sorted(set(shares)) or any(not 0 <= s < MAX_SHARES for s in shares):
        raise ValueError("shares must be distinct sorted share numbers in [0, 256)")


def sign_node_record(key: SigningKey, address: str, expires: int, operator: str = "") -> NodeRecord:
    """The node's signed record; ``operator`` (optional, field ``op``): the family it declares."""
    _check_address(address)
    body = _body_node(key.public_key, address, expires)
    if operator:
        body["op"] = check_operator(operator)
    sig = key.sign(_NODE_HASH(cbor.encode(body)))
    raw = cbor.encode({**body, "sig": sig})
    if len(raw) > MAX_RECORD_SIZE:
        raise ValueError("record too large")
    return NodeRecord(body["id"], key.public_key, address, expires, sig, raw, operator)


def sign_provider_record(
    key: SigningKey, storage_index: bytes, address: str, shares: tuple[int, ...], expires: int
) -> ProviderRecord:
    if len(storage_index) != ID_BYTES:
        raise ValueError("a storage index is 32 bytes")
    _check_address(address)
    _check_shares(shares)
    body = _body_provider(storage_index, key.public_key, address, shares, expires)
    sig = key.sign(_PROVIDER_HASH(cbor.encode(body)))
    raw = cbor.encode({**body, "sig": sig})
    if len(raw) > MAX_RECORD_SIZE:
        raise ValueError("record too large")
    return ProviderRecord(storage_index, body["id"], key.public_key, address, shares, expires, sig, raw)


def _check_signature(pk: bytes, message: bytes, sig: bytes) -> None:
    # libsodium's verifier without per-call object churn (a node checks one provider record per
    # other holder of every file it stores)
    if not verify_fast(pk, message, sig):
        raise IntegrityError("bad signature")


def decode_record(data: bytes, now: float, id_bits: int = 0) -> Record:
    """Check and decode a record of either kind; IntegrityError unless every check passes.

    ``id_bits``: the network's id puzzle; a record whose author's id does not solve it is
    refused before its signature is checked (a node nobody would route to cannot provide)."""
    if len(data) > MAX_RECORD_SIZE:
        raise IntegrityError(f"DHT record of {len(data)} bytes is over the {MAX_RECORD_SIZE}-byte limit")
    m = cbor.decode_for_schema(data, MAX_RECORD_SIZE)  # every field's type is checked below
    if not isinstance(m, dict) or m.get("magic") != MAGIC:
        raise IntegrityError("not a DHT record")
    if type(m.get("v")) is not int or m.get("v") != VERSION:
        raise IntegrityError(f"DHT record version {m.get('v')!r} is not supported")
    kind = m.get("kind")
    if kind == "node":
        m = require_map(m, "node record", _NODE_FIELDS | {"op"})
    elif kind == "provider":
        m = require_map(m, "provider record", _PROVIDER_FIELDS)
    else:
        raise IntegrityError("unknown DHT record kind")
    what = f"{kind} record"
    rid = get_bytes(m, "id", what, ID_BYTES)
    pk = get_bytes(m, "pk", what, PUBLIC_KEY_SIZE)
    address = get_str(m, "addr", what, MAX_ADDRESS_LEN)
    expires = get_int(m, "exp", what)
    sig = get_bytes(m, "sig", what, SIGNATURE_SIZE)
    if not address:
        raise IntegrityError(f"{what}: empty address")
    if node_id(pk) != rid:
        raise IntegrityError(f"{what}: node id does not match its public key")
    if not valid_id(rid, id_bits):
        raise IntegrityError(f"{what}: node id does not solve the {id_bits}-bit id puzzle")
    if expires <= now:
        raise IntegrityError(f"{what} has expired")
    if expires > now + MAX_TTL:
        raise IntegrityError(f"{what} claims to live longer than {MAX_TTL} seconds")
    body = {k: v for k, v in m.items() if k != "sig"}
    if kind == "node":
        op = ""
        if "op" in m:
            try:
                op = check_operator(get_str(m, "op", what, MAX_OPERATOR_LEN))
            except ValueError as e:
                raise IntegrityError(f"{what}: {e}") from e
        _check_signature(pk, _NODE_HASH(cbor.encode_decoded(body)), sig)
        return NodeRecord(rid, pk, address, expires, sig, bytes(data), op)
    key = get_bytes(m, "key", what, ID_BYTES)
    raw_shares = m.get("shares")
    if not isinstance(raw_shares, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw_shares):
        raise IntegrityError(f"{what}: field 'shares' must be a list of share numbers")
    shares = tuple(raw_shares)
    try:
        _check_shares(shares)
    except ValueError as e:
        raise IntegrityError(f"{what}: {e}") from e
    _check_signature(pk, _PROVIDER_HASH(cbor.encode_decoded(body)), sig)
    return ProviderRecord(key, rid, pk, address, shares, expires, sig, bytes(data))


def decode_node_record(data: bytes, now: float, id_bits: int = 0) -> NodeRecord:
    rec = decode_record(data, now, id_bits)
    if not isinstance(rec, NodeRecord):
        raise IntegrityError("expected a node record")
    return rec


def decode_provider_record(data: bytes, now: float, id_bits: int = 0) -> ProviderRecord:
    rec = decode_record(data, now, id_bits)
    if not isinstance(rec, ProviderRecord):
        raise IntegrityError("expected a provider record")
    return rec
