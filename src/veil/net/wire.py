"""What a response looks like on the wire, and the server's bounds: no I/O here.

``render_head`` is the one header path: handler responses and the answers the server makes
itself (400, 408, 413, 414, 431, 501, 503, 505 ...) all go through it, so the server-wide
default headers (the gateway's CSP, nosniff, frame options ...) are on every response.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from veil.errors import UsageError
from veil.format import cbor


class HTTPError(Exception):
    """Raised by a handler to answer with an error status and a CBOR error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes | memoryview] = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # required when body is an iterable


def cbor_response(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=cbor.encode(value), content_type="application/cbor")


def cbor_error(status: int, code: str, message: str) -> Response:
    """The default body of an error the server makes itself: ``{error: code, message}`` in CBOR."""
    return cbor_response({"error": code, "message": message}, status)


@dataclass(frozen=True)
class Limits:
    """Every bound of one server; docs/specs/transport.md derives its memory bound from these."""

    workers: int = 16  # threads that run handlers; nothing else runs a handler
    workers_per_ip: int = 4  # of those, at most this many serve one client IP at a time
    queue: int = 64  # complete request heads waiting for a worker; past it: 503 + Retry-After
    max_connections: int = 512  # open connections in total (idle ones are evicted first)
    max_per_ip: int = 128  # open connections from one IP address
    handshake_timeout: float = 10.0  # TCP accept to TLS handshake done
    head_timeout: float = 10.0  # first byte of a request to the end of its head
    idle_timeout: float = 120.0  # keep-alive connection with no request in progress
    io_timeout: float = 10.0  # longest wait for any single read or write while serving
    min_rate: int = 64 * 1024  # bytes/s a body (in or out) must average after io_timeout of grace
    retry_after: int = 1  # seconds, in the Retry-After of a 503 for a full queue


def parse_limits(items: Iterable[str], base: Limits | None = None) -> Limits:
    """``["workers=64", "head_timeout=5"]`` (the ``--http-limit`` option) over ``base``; UsageError if bad."""
    lim = base or Limits()
    types = {f.name: f.type for f in fields(Limits)}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in types:
            raise UsageError(f"--http-limit {item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        try:
            value: float | int = float(raw) if types[key] in (float, "float") else int(raw)
        except ValueError:
            raise UsageError(f"--http-limit {item!r}: {raw!r} is not a number") from None
        if not 0 < value < 10**9:
            raise UsageError(f"--http-limit {item!r}: must be positive")
        changes: dict[str, Any] = {key: value}
        lim = replace(lim, **changes)
    return lim


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _clean(s: str) -> str:
    # A header value must never carry CR/LF (response splitting) or other controls.
    return "".join(c if " " <= c != "\x7f" else " " for c in s)


def render_head(status: int, content_type: str, length: int, headers: Mapping[str, str],
                defaults: Mapping[str, str], close: bool) -> bytes:
    """Status line and header block of a response.

    ``headers`` (the handler's) win over ``defaults`` (the server's) by name; a handler drops a
    default by setting that header to ``""`` (an empty value is never sent).
    """
    own = {k.lower() for k in headers}
    lines = [f"HTTP/1.1 {status} {reason(status)}", "Server: veil", f"Date: {http_date()}",
             f"Content-Type: {_clean(content_type)}", f"Content-Length: {length}"]
    for k, v in defaults.items():
        if k.lower() not in own:
            lines.append(f"{_clean(k)}: {_clean(v)}")
    for k, v in headers.items():
        if v and k.lower() not in ("content-length", "connection", "server", "date", "content-type"):
            lines.append(f"{_clean(k)}: {_clean(v)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def render_small(resp: Response, defaults: Mapping[str, str], close: bool) -> bytes:
    """A whole response with a bytes body (the server's own error answers), head and body."""
    assert isinstance(resp.body, bytes | bytearray | memoryview)
    body = bytes(resp.body)
    return render_head(resp.status, resp.content_type, len(body), resp.headers, defaults, close) + body
