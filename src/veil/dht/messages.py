"""DHT request and response messages, and their wire form (canonical CBOR, size-bounded).

Every message is a map ``{"magic": "veil/dht", "v": 1, "type": ..., ...}``. Decoding checks the
size before parsing and every field's type and bound before anything acts on it. Records travel
as their exact signed bytes and are verified by the receiver (veil.dht.records); this module
checks only their shape. ``from`` is the sender's claimed contact: the receiver verifies it
(by pinging it) before it enters a routing table.
Imports from: veil.errors, veil.format, veil.dht.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veil.dht.ids import ID_BYTES, MAX_ADDRESS_LEN, Contact
from veil.dht.records import MAX_RECORD_SIZE
from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.fields import get_bytes, get_str, require_map

MAGIC = "veil/dht"
VERSION = 1
MAX_MESSAGE_SIZE = 32 * 1024
MAX_CONTACTS = 32
MAX_RECORDS = 20
MAX_REASON = 64
MAX_BATCH_RECORDS = 64  # provider records in one add_providers request
BATCH_BYTES = 24 * 1024  # a sender keeps one add_providers request's records under this


# -- requests ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class FindNode:
    target: bytes
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class FindValue:
    """Ask for the node record of node ``key`` (or the closest contacts to it)."""

    key: bytes
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class FindProviders:
    key: bytes
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class AddProvider:
    record: bytes
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class AddProviders:
    """Several provider records in one request (a node announcing many storage indexes at
    once); answered with one ``Stored`` (true if every record was kept)."""

    records: tuple[bytes, ...]
    sender: Contact | None = None


@dataclass(frozen=True, slots=True)
class StoreNode:
    record: bytes
    sender: Contact | None = None


Request = Ping | FindNode | FindValue | FindProviders | AddProvider | AddProviders | StoreNode

# -- responses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class Nodes:
    nodes: tuple[Contact, ...]


@dataclass(frozen=True, slots=True)
class Value:
    record: bytes | None
    nodes: tuple[Contact, ...]


@dataclass(frozen=True, slots=True)
class Providers:
    records: tuple[bytes, ...]
    nodes: tuple[Contact, ...]


@dataclass(frozen=True, slots=True)
class Stored:
    accepted: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The request was not served: ``rate_limited``, ``invalid`` or ``full``."""

    reason: str


Response = Pong | Nodes | Value | Providers | Stored | Refused

_REQUEST_TYPES: dict[type, str] = {
    Ping: "ping",
    FindNode: "find_node",
    FindValue: "find_value",
    FindProviders: "find_providers",
    AddProvider: "add_provider",
    AddProviders: "add_providers",
    StoreNode: "store_node",
}
_RESPONSE_TYPES: dict[type, str] = {
    Pong: "pong",
    Nodes: "nodes",
    Value: "value",
    Providers: "providers",
    Stored: "stored",
    Refused: "refused",
}
# What a response to each request may be (a Refused is always allowed).
EXPECTED: dict[type, type] = {
    Ping: Pong,
    FindNode: Nodes,
    FindValue: Value,
    FindProviders: Providers,
    AddProvider: Stored,
    AddProviders: Stored,
    StoreNode: Stored,
}


def _contact_wire(c: Contact) -> list[Any]:
    return [c.node_id, c.address]


def _contacts_wire(cs: tuple[Contact, ...]) -> list[Any]:
    return [_contact_wire(c) for c in cs]


def encode_request(msg: Request) -> bytes:
    m: dict[str, Any] = {"magic": MAGIC, "v": VERSION, "type": _REQUEST_TYPES[type(msg)]}
    if msg.sender is not None:
        m["from"] = _contact_wire(msg.sender)
    if isinstance(msg, FindNode):
        m["target"] = msg.target
    elif isinstance(msg, FindValue | FindProviders):
        m["key"] = msg.key
    elif isinstance(msg, AddProvider | StoreNode):
        m["record"] = msg.record
    elif isinstance(msg, AddProviders):
        m["records"] = list(msg.records)
    return _bounded(cbor.encode(m))


def encode_response(msg: Response) -> bytes:
    m: dict[str, Any] = {"magic": MAGIC, "v": VERSION, "type": _RESPONSE_TYPES[type(msg)]}
    if isinstance(msg, Nodes):
        m["nodes"] = _contacts_wire(msg.nodes)
    elif isinstance(msg, Value):
        m["nodes"] = _contacts_wire(msg.nodes)
        m["record"] = msg.record
    elif isinstance(msg, Providers):
        m["nodes"] = _contacts_wire(msg.nodes)
        m["records"] = list(msg.records)
    elif isinstance(msg, Stored):
        m["accepted"] = msg.accepted
    elif isinstance(msg, Refused):
        m["reason"] = msg.reason[:MAX_REASON]
    return _bounded(cbor.encode(m))


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_MESSAGE_SIZE:
        raise ValueError("DHT message over the size limit")
    return data


def _envelope(data: bytes, what: str) -> tuple[str, dict[str, Any]]:
    m = cbor.decode_for_schema(data, MAX_MESSAGE_SIZE)  # every field's type is checked by the caller
    if not isinstance(m, dict) or m.get("magic") != MAGIC:
        raise IntegrityError(f"not a DHT {what}")
    if type(m.get("v")) is not int or m.get("v") != VERSION:
        raise IntegrityError(f"DHT {what} version {m.get('v')!r} is not supported")
    t = m.get("type")
    if not isinstance(t, str):
        raise IntegrityError(f"DHT {what} without a type")
    return t, m


def _contact(v: Any, what: str) -> Contact:
    if (
        not isinstance(v, list)
        or len(v) != 2
        or not isinstance(v[0], bytes)
        or len(v[0]) != ID_BYTES
        or not isinstance(v[1], str)
        or not 0 < len(v[1]) <= MAX_ADDRESS_LEN
    ):
        raise IntegrityError(f"{what}: malformed contact")
    return Contact(v[0], v[1])


def _contacts(m: dict[str, Any], what: str) -> tuple[Contact, ...]:
    v = m.get("nodes")
    if not isinstance(v, list) or len(v) > MAX_CONTACTS:
        raise IntegrityError(f"{what}: 'nodes' must be a list of at most {MAX_CONTACTS} contacts")
    return tuple(_contact(c, what) for c in v)


def _records(m: dict[str, Any], what: str, limit: int) -> tuple[bytes, ...]:
    recs = m.get("records")
    if (
        not isinstance(recs, list)
        or len(recs) > limit
        or not all(isinstance(r, bytes) and len(r) <= MAX_RECORD_SIZE for r in recs)
    ):
        raise IntegrityError(f"{what}: 'records' must be at most {limit} records")
    return tuple(recs)


def decode_request(data: bytes) -> Request:
    t, m = _envelope(data, "request")
    base = {"magic", "v", "type", "from"}
    what = f"DHT {t} request"
    sender = _contact(m["from"], what) if m.get("from") is not None else None
    if t == "ping":
        require_map(m, what, base)
        return Ping(sender)
    if t == "find_node":
        require_map(m, what, base | {"target"})
        return FindNode(get_bytes(m, "target", what, ID_BYTES), sender)
    if t in ("find_value", "find_providers"):
        require_map(m, what, base | {"key"})
        key = get_bytes(m, "key", what, ID_BYTES)
        return FindValue(key, sender) if t == "find_value" else FindProviders(key, sender)
    if t in ("add_provider", "store_node"):
        require_map(m, what, base | {"record"})
        rec = get_bytes(m, "record", what, max_size=MAX_RECORD_SIZE)
        return AddProvider(rec, sender) if t == "add_provider" else StoreNode(rec, sender)
    if t == "add_providers":
        require_map(m, what, base | {"records"})
        return AddProviders(_records(m, what, MAX_BATCH_RECORDS), sender)
    raise IntegrityError(f"unknown DHT request type {t[:32]!r}")


def decode_response(data: bytes) -> Response:
    t, m = _envelope(data, "response")
    base = {"magic", "v", "type"}
    what = f"DHT {t} response"
    if t == "pong":
        require_map(m, what, base)
        return Pong()
    if t == "nodes":
        require_map(m, what, base | {"nodes"})
        return Nodes(_contacts(m, what))
    if t == "value":
        require_map(m, what, base | {"nodes", "record"})
        rec = None if m.get("record") is None else get_bytes(m, "record", what, max_size=MAX_RECORD_SIZE)
        return Value(rec, _contacts(m, what))
    if t == "providers":
        require_map(m, what, base | {"nodes", "records"})
        return Providers(_records(m, what, MAX_RECORDS), _contacts(m, what))
    if t == "stored":
        require_map(m, what, base | {"accepted"})
        ok = m.get("accepted")
        if not isinstance(ok, bool):
            raise IntegrityError(f"{what}: 'accepted' must be a boolean")
        return Stored(ok)
    if t == "refused":
        require_map(m, what, base | {"reason"})
        return Refused(get_str(m, "reason", what, MAX_REASON))
    raise IntegrityError(f"unknown DHT response type {t[:32]!r}")
