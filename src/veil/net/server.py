"""A threaded HTTP/1.1-over-TLS-1.3 server with a tiny router.

Blocking sockets in threads, not an event loop: measured on the reference machine, plain
`ssl` sockets move 1.0-1.2 GB/s per connection where aiohttp managed 0.3-0.4 GB/s
(docs/specs/transport.md). Every request's header and body sizes are bounded before any
work is done; handlers read bodies themselves so large uploads stream to disk.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from veil.errors import (
    CapError,
    IntegrityError,
    LedgerError,
    NotFoundError,
    PaymentRequiredError,
    StorageFullError,
    UnavailableError,
    UsageError,
    VeilError,
)
from veil.format import cbor

log = logging.getLogger("veil.net")

MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_BODY = 1 << 20


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


class Request:
    """One parsed request. The body is read on demand, never more than the handler allows."""

    def __init__(self, handler: _Handler, method: str, path: str, query: dict[str, str], params: dict[str, str]):
        self._h = handler
        self.method = method
        self.path = path
        self.query = query
        self.params = params
        self.headers = handler.headers
        self.peer = handler.client_address
        self.remaining = self.content_length
        self.extra: dict[str, Any] = {}

    @property
    def content_length(self) -> int:
        raw = self._h.headers.get("Content-Length", "0")
        if not raw.isdigit() or len(raw) > 15:
            raise HTTPError(400, "bad_request", "bad Content-Length")
        return int(raw)

    def int_param(self, name: str, default: int | None = None) -> int:
        """A non-negative integer query parameter; 400 if malformed, or missing without a default."""
        raw = self.query.get(name)
        if raw is None:
            if default is None:
                raise HTTPError(400, "bad_request", f"missing parameter {name}")
            return default
        if not raw.isdigit() or len(raw) > 15:
            raise HTTPError(400, "bad_request", f"parameter {name} must be a non-negative integer")
        return int(raw)

    def read_body(self, max_size: int = DEFAULT_MAX_BODY) -> bytes:
        """The whole body; 413 if it is larger than ``max_size``."""
        n = self.remaining
        if n > max_size:
            raise HTTPError(413, "too_large", f"body of {n} bytes exceeds the {max_size}-byte limit")
        buf = bytearray(n)
        self.readinto_exact(memoryview(buf))
        return bytes(buf)

    def readinto_exact(self, mv: memoryview) -> None:
        """Fill ``mv`` from the body; 400 if the body ends first."""
        if len(mv) > self.remaining:
            raise HTTPError(400, "bad_request", "body shorter than announced")
        got = 0
        rfile = self._h.rfile
        while got < len(mv):
            r = rfile.readinto(mv[got:])
            if not r:
                raise HTTPError(400, "bad_request", "connection closed mid-body")
            got += r
        self.remaining -= got


Handler = Callable[[Request], Response]


class Router:
    """Maps (method, path pattern) to handlers; patterns look like ``/v1/shares/{si}/{shnum}``."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
        self._routes.append((method, re.compile(regex), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed: list[str] = []
        for m, rx, h in self._routes:
            mo = rx.match(path)
            if mo:
                if m == method:
                    return h, {k: unquote(v) for k, v in mo.groupdict().items()}
                allowed.append(m)
        if allowed:
            raise HTTPError(405, "method_not_allowed", f"{method} not allowed on {path}",
                            {"Allow": ", ".join(sorted(set(allowed)))})
        raise HTTPError(404, "no_route", f"no such endpoint: {path}")


def error_status(e: VeilError) -> tuple[int, str]:
    """How a VeilError raised in a handler is reported on the wire."""
    if isinstance(e, LedgerError):
        return 400, e.code
    if isinstance(e, NotFoundError):
        return 404, "not_found"
    if isinstance(e, StorageFullError):
        return 507, "storage_full"
    if isinstance(e, PaymentRequiredError):
        return 402, "payment_required"
    if isinstance(e, IntegrityError | CapError | UsageError):
        return 400, "bad_request"
    if isinstance(e, UnavailableError):
        return 503, "unavailable"
    return 500, "error"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPSServer
    server_version = "veil"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], format % args)

    def setup(self) -> None:
        sock = self.request
        if isinstance(sock, ssl.SSLSocket):
            sock.settimeout(30)
            sock.do_handshake()
            sock.settimeout(self.server.idle_timeout)
        super().setup()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            self.close_connection = True

    def _dispatch(self) -> None:
        method = self.command
        req: Request | None = None
        try:
            url = urlsplit(self.path)
            if sum(len(k) + len(v) for k, v in self.headers.items()) > MAX_HEADER_BYTES:
                raise HTTPError(431, "headers_too_large", "request headers too large")
            handler, params = self.server.router.match(method, url.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            req = Request(self, method, url.path, query, params)
            resp = handler(req)
        except HTTPError as e:
            resp = cbor_response({"error": e.code, "message": e.message}, e.status)
            resp.headers.update(e.headers)
        except VeilError as e:
            status, code = error_status(e)
            resp = cbor_response({"error": code, "message": str(e)}, status)
        except Exception:
            log.error("handler failed: %s", traceback.format_exc())
            resp = cbor_response({"error": "internal", "message": "internal error"}, 500)
        # A body the handler did not read would be parsed as the next request: close instead.
        if req is None or req.remaining:
            self.close_connection = True
        self._send(resp)

    def _send(self, resp: Response) -> None:
        body = resp.body
        if isinstance(body, bytes | bytearray | memoryview):
            length = len(body)
        else:
            if resp.content_length is None:
                raise RuntimeError("streamed responses need content_length")
            length = resp.content_length
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(length))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if isinstance(body, bytes | bytearray | memoryview):
            if body:
                self.wfile.write(body)
        else:
            sent = 0
            for chunk in body:
                self.wfile.write(chunk)
                sent += len(chunk)
            if sent != length:
                self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, PATCH, QUERY, ...) goes through the router too, so a method
        # an endpoint does not serve is a client error (405), never a server error (501).
        if name.startswith("do_") and name[3:].isalpha() and len(name) <= 24:
            return self._dispatch
        raise AttributeError(name)


class HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], router: Router, ctx: ssl.SSLContext | None, idle_timeout: float = 120):
        self.router = router
        self.ctx = ctx
        self.idle_timeout = idle_timeout
        super().__init__(addr, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx is None:
            return sock, addr
        # The handshake runs in the request's own thread (setup), so a slow peer cannot stall accept.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address)


def serve(addr: tuple[str, int], router: Router, ctx: ssl.SSLContext | None) -> HTTPSServer:
    """Bind and start serving in a background thread; returns the server (``.shutdown()`` to stop)."""
    srv = HTTPSServer(addr, router, ctx)
    t = threading.Thread(target=srv.serve_forever, name=f"https-{addr[1]}", daemon=True)
    t.start()
    return srv
