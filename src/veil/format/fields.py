"""Schema checks for decoded CBOR maps: every untrusted field is typed and bounded here."""

from __future__ import annotations

from typing import Any

from veil.errors import IntegrityError


def require_map(value: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntegrityError(f"{what}: expected a map")
    extra = set(value) - allowed
    if extra:
        raise IntegrityError(f"{what}: unknown fields {sorted(map(str, extra))}")
    return value


def get_int(m: dict[str, Any], key: str, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise IntegrityError(f"{what}: field {key!r} must be an integer in [{lo}, {hi}]")
    return v


def get_bytes(m: dict[str, Any], key: str, what: str, size: int | None = None, max_size: int = 1 << 20) -> bytes:
    v = m.get(key)
    if not isinstance(v, bytes) or (size is not None and len(v) != size) or len(v) > max_size:
        want = f"{size} bytes" if size is not None else f"at most {max_size} bytes"
        raise IntegrityError(f"{what}: field {key!r} must be {want}")
    return v


def get_str(m: dict[str, Any], key: str, what: str, max_len: int = 256) -> str:
    v = m.get(key)
    if not isinstance(v, str) or len(v) > max_len:
        raise IntegrityError(f"{what}: field {key!r} must be a string of at most {max_len} characters")
    return v


def get_opt_bytes(m: dict[str, Any], key: str, what: str, size: int | None = None) -> bytes | None:
    return None if m.get(key) is None else get_bytes(m, key, what, size)


def get_opt_str(m: dict[str, Any], key: str, what: str, max_len: int = 256) -> str | None:
    return None if m.get(key) is None else get_str(m, key, what, max_len)
