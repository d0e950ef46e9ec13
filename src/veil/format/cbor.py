"""Canonical CBOR (RFC 8949 §4.2.1 core deterministic encoding) with a strict, bounded decoder.

Only these types exist on the wire: int, bytes, str, bool, None, list, dict (keys str or int).
Decoding checks the size bound first, rejects tags, floats and indefinite lengths, and
re-encodes to prove the input was canonical, so one value has exactly one encoding and
hashes/signatures over encodings are unambiguous.
"""

from __future__ import annotations

from typing import Any

import cbor2

from veil.errors import IntegrityError

Value = Any  # int | bytes | str | bool | None | list[Value] | dict[str | int, Value]

MAX_DEPTH = 16


def encode(value: Value) -> bytes:
    """The canonical encoding of ``value`` (which must use only the wire types)."""
    _check_types(value, 0)
    return bytes(cbor2.dumps(value, canonical=True))


def encode_decoded(value: Value) -> bytes:
    """``encode`` of (part of) a value ``decode_for_schema`` returned and the caller checked
    field by field: the canonical encoding without the generic type walk (a hot path)."""
    return bytes(cbor2.dumps(value, canonical=True))


def decode(data: bytes | bytearray | memoryview, max_size: int) -> Value:
    """Decode canonical CBOR of at most ``max_size`` bytes, or raise IntegrityError."""
    if len(data) > max_size:
        raise IntegrityError(f"encoded object is {len(data)} bytes, over the {max_size}-byte limit")
    raw = bytes(data)
    try:
        value = cbor2.loads(raw)
    except Exception as e:  # cbor2 raises several unrelated types on bad input
        raise IntegrityError("malformed CBOR") from e
    try:
        _check_types(value, 0)
    except ValueError as e:
        raise IntegrityError(f"malformed CBOR: {e}") from e
    if cbor2.dumps(value, canonical=True) != raw:
        raise IntegrityError("CBOR is not in canonical form")
    return value


_EXACT_SCALARS = frozenset({str, bytes, bool, type(None)})
_INT_MIN, _INT_END = -(2**64), 2**64


def decode_for_schema(data: bytes | bytearray | memoryview, max_size: int) -> Value:
    """``decode`` without the generic type walk, for hot paths whose caller then checks the
    exact type of every field and rejects unknown ones (so a float or tag still fails there).
    Size bound and canonical form are checked as in ``decode``."""
    if len(data) > max_size:
        raise IntegrityError(f"encoded object is {len(data)} bytes, over the {max_size}-byte limit")
    raw = bytes(data)
    try:
        value = cbor2.loads(raw)
        canonical = cbor2.dumps(value, canonical=True) == raw
    except Exception as e:  # cbor2 raises several unrelated types on bad input
        raise IntegrityError("malformed CBOR") from e
    if not canonical:
        raise IntegrityError("CBOR is not in canonical form")
    return value


def _check_types(value: Value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    # Fast path on exact types (what cbor2 returns); subclasses fall through to the checks below.
    t = type(value)
    if t in _EXACT_SCALARS:
        return
    if t is int:
        if not _INT_MIN <= value < _INT_END:
            raise ValueError("integer out of range")
        return
    if value is None or isinstance(value, bool | str | bytes):
        return
    if isinstance(value, int):
        if not -(2**64) <= value < 2**64:
            raise ValueError("integer out of range")
        return
    if isinstance(value, list):
        for v in value:
            _check_types(v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, str | int):
                raise ValueError("map keys must be strings or integers")
            _check_types(v, depth + 1)
        return
    raise ValueError(f"type {type(value).__name__} is not allowed")
