"""Parsers for what people type: byte sizes and HOST:PORT addresses (one of each in Veil).

Sizes take decimal SI units (``KB`` = 1000, as prices are per GB) and binary IEC units
(``KiB`` = 1024), case-insensitive, with or without a space: ``100GB``, ``2GiB``,
``512 kb``, ``1048576``. Addresses are ``HOST:PORT``, ``[v6]:PORT`` or ``:PORT``.

Imports from: veil.errors.
"""

from __future__ import annotations

from veil.errors import UsageError

SIZE_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}
MAX_SIZE = 1 << 62


def parse_size(text: str, what: str = "size") -> int:
    """``"2GiB"`` -> 2147483648; UsageError naming ``what`` if it is not a size."""
    t = str(text).strip().lower().replace(" ", "").replace("_", "")
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = t[len(num):]
    if not num.isascii() or not num.isdigit() or unit not in SIZE_UNITS or len(num) > 19:
        raise UsageError(f"bad {what} {text!r} (examples: 500MB, 2GiB, 1048576)")
    value = int(num) * SIZE_UNITS[unit]
    if value > MAX_SIZE:
        raise UsageError(f"bad {what} {text!r}: too large")
    return value


def parse_hostport(text: str, what: str = "address", default_host: str = "127.0.0.1",
                   allow_zero: bool = False) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` -> ("127.0.0.1", 8080); ``"[::1]:80"`` -> ("::1", 80);
    ``":9000"`` -> (default_host, 9000). Port 0 (pick one) only with ``allow_zero``."""
    host, sep, port = str(text).strip().rpartition(":")
    low = 0 if allow_zero else 1
    if not sep or not port.isascii() or not port.isdigit() or not low <= int(port) < 65536:
        raise UsageError(f"bad {what} {text!r}: use HOST:PORT")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(c.isspace() or c in "/@?#" for c in host):
        raise UsageError(f"bad {what} {text!r}: use HOST:PORT")
    return host or default_host, int(port)
