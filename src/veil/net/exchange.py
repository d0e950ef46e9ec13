"""One request/response exchange, run by a worker thread on a blocking (timeout-mode) socket.

The head is already parsed (``http1.py``); here the handler runs, the body is read on demand
straight from the socket into the handler's own buffer (``readinto_exact``: no extra copy, the
fast path for 32 MiB blocks), and the response goes out through ``wire.render_head``. Reads and
writes are bounded by ``Limits``: no single wait longer than ``io_timeout``, and after that
much grace a body must keep up ``min_rate`` on average, so a client dripping a byte a second
is cut off within about ``io_timeout`` seconds whatever its Content-Length.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from veil.errors import (
    CapError,
    IntegrityError,
    LedgerError,
    NotAllowedError,
    NotFoundError,
    PaymentRequiredError,
    StorageFullError,
    UnavailableError,
    UsageError,
    VeilError,
)
from veil.net.http1 import Headers, RequestHead
from veil.net.reactor import Conn
from veil.net.wire import HTTPError, Limits, Response, render_head

log = logging.getLogger("veil.net")

DEFAULT_MAX_BODY = 1 << 20
SMALL_WRITE = 64 * 1024  # head and body go out in one write below this


class ClientGone(HTTPError):
    """The client broke off, stalled or fell below the minimum rate mid-body; no answer is sent."""


class Request:
    """One parsed request. The body is read on demand, never more than the handler allows."""

    def __init__(self, conn: Conn, head: RequestHead, leftover: bytes, limits: Limits,
                 path: str, query: dict[str, str], params: dict[str, str]) -> None:
        self._conn = conn
        self._leftover = memoryview(leftover)
        self._limits = limits
        self._expect_continue = head.expect_continue
        self._clock_start = 0.0
        self._received = 0
        self.broken = False
        self.method = head.method
        self.path = path
        self.query = query
        self.params = params
        self.headers: Headers = head.headers
        self.peer: tuple[str, int] = conn.peer
        self.content_length = head.content_length
        self.remaining = head.content_length
        self.extra: dict[str, Any] = {}
        self.route = ""  # the Router pattern that matched (server.Router sets it); "" when none did

    @property
    def client_ip(self) -> str:
        """The peer's IP address, for per-client bounds (no proxy headers are trusted)."""
        return self.peer[0]

    def int_param(self, name: str, default: int | None = None) -> int:
        """A non-negative integer query parameter; 400 if malformed, or missing without a default."""
        raw = self.query.get(name)
        if raw is None:
            if default is None:
                raise HTTPError(400, "bad_request", f"missing parameter {name}")
            return default
        if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
            raise HTTPError(400, "bad_request", f"parameter {name} must be a non-negative integer")
        return int(raw)

    def read_body(self, max_size: int = DEFAULT_MAX_BODY) -> bytes:
        """The whole body; 413 (before anything is allocated) if it is larger than ``max_size``."""
        n = self.remaining
        if n > max_size:
            raise HTTPError(413, "too_large", f"body of {n} bytes exceeds the {max_size}-byte limit")
        buf = bytearray(n)
        self.readinto_exact(memoryview(buf))
        return bytes(buf)

    def readinto_exact(self, mv: memoryview) -> None:
        """Fill ``mv`` from the body; 400 if the body ends first, 408 if the client is too slow."""
        want = len(mv)
        if want > self.remaining:
            raise HTTPError(400, "bad_request", "body shorter than announced")
        got = 0
        if self._leftover:
            got = min(want, len(self._leftover))
            mv[:got] = self._leftover[:got]
            self._leftover = self._leftover[got:]
        if got < want:
            self._recv_into(mv, got)
        self.remaining -= want

    def _recv_into(self, mv: memoryview, got: int) -> None:
        sock = self._conn.sock
        lim = self._limits
        if self._expect_continue:
            self._expect_continue = False
            self._send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not self._clock_start:
            self._clock_start = time.monotonic()
        timeout = -1.0
        while got < len(mv):
            # The body must average min_rate after io_timeout of grace; no single wait over io_timeout.
            left = self._clock_start + lim.io_timeout + self._received / lim.min_rate - time.monotonic()
            if left <= 0:
                self._gone(408, "request_timeout", "request body arriving too slowly")
            try:
                if min(lim.io_timeout, left) != timeout:  # a client keeping up never changes it
                    timeout = min(lim.io_timeout, left)
                    sock.settimeout(timeout)
                r = sock.recv_into(mv[got:])
            except TimeoutError:
                self._gone(408, "request_timeout", "request body stalled")
            except (OSError, ssl.SSLError, ValueError):
                self._gone(400, "bad_request", "connection broke mid-body")
            if not r:
                self._gone(400, "bad_request", "connection closed mid-body")
            got += r
            self._received += r

    def _gone(self, status: int, code: str, message: str) -> None:
        self.broken = True
        raise ClientGone(status, code, message)

    def _send_raw(self, data: bytes) -> None:
        try:
            send_all(self._conn.sock, memoryview(data), self._limits)
        except OSError:
            self._gone(400, "bad_request", "connection broke")

    @property
    def body_left_unread(self) -> bool:
        return self.remaining > 0


def send_all(sock: socket.socket, data: memoryview, lim: Limits) -> None:
    """Write all of ``data`` within io_timeout plus its length at min_rate (a slow reader is cut off)."""
    pos = 0
    while pos < len(data):
        sock.settimeout(lim.io_timeout + (len(data) - pos) / lim.min_rate)
        pos += sock.send(data[pos:])


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
    if isinstance(e, NotAllowedError):
        return 403, "not_allowed"
    if isinstance(e, IntegrityError | CapError | UsageError):
        return 400, "bad_request"
    if isinstance(e, UnavailableError):
        return 503, "unavailable"
    return 500, "error"


Handler = Callable[[Request], Response]


class RouterLike(Protocol):
    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]: ...


ErrorResponse = Callable[[int, str, str], Response]


@dataclass(frozen=True)
class Served:
    """One answered request, as a server's observer sees it once the answer is sent (metrics,
    access logs). ``route`` is the matched pattern (bounded, unlike paths); ``request`` is None
    when the request was refused before it was parsed into one."""

    method: str
    route: str
    status: int
    bytes_in: int  # body bytes read
    bytes_out: int  # bytes written: head and body
    seconds: float  # from dispatch to the last byte written
    request: Request | None


Observer = Callable[[Served], None]


@dataclass
class Site:
    """What a worker needs from its server."""

    router: RouterLike
    limits: Limits
    default_headers: Mapping[str, str]
    error_response: ErrorResponse
    observer: Observer | None = None


def _answer(site: Site, head: RequestHead, conn: Conn, leftover: bytes) -> tuple[Response, Request | None]:
    req: Request | None = None
    try:
        url = urlsplit(head.target)
        handler, params = site.router.match(head.method, url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        req = Request(conn, head, leftover, site.limits, url.path, query, params)
        resp = handler(req)
    except HTTPError as e:
        resp = site.error_response(e.status, e.code, e.message)
        resp.headers.update(e.headers)
    except VeilError as e:
        status, code = error_status(e)
        resp = site.error_response(status, code, str(e))
    except Exception:
        log.error("handler failed: %s", traceback.format_exc())
        resp = site.error_response(500, "internal", "internal error")
    return resp, req


def serve_one(site: Site, conn: Conn, head: RequestHead, leftover: bytes) -> tuple[bool, bool]:
    """Answer one request on ``conn``; returns (keep the connection, linger before closing)."""
    t0 = time.monotonic()
    resp, req = _answer(site, head, conn, leftover)
    sent = 0
    try:
        if req is not None and req.broken:
            _close_body(resp)
            return False, False
        unread = req.remaining if req is not None else head.content_length
        # A body the handler did not read would be parsed as the next request: close instead.
        keep = head.keep_alive and unread == 0
        rest = bytes(req._leftover) if req is not None else (leftover if head.content_length == 0 else b"")
        try:
            ok, sent = _write(site, conn.sock, resp, close=not keep, head_only=head.method == "HEAD")
        except (OSError, ssl.SSLError, ValueError):
            return False, False
        if not ok:
            return False, False
        conn.buf = bytearray(rest) if keep else bytearray()
        return keep, not keep and unread > 0
    finally:
        if site.observer is not None:
            _observe(site.observer, head, resp, req, sent, time.monotonic() - t0)


def _observe(observer: Observer, head: RequestHead, resp: Response, req: Request | None, sent: int,
             seconds: float) -> None:  # fmt: skip
    read = req.content_length - req.remaining if req is not None else 0
    status = 499 if req is not None and req.broken else resp.status  # 499: the client went away (nginx's code)
    try:
        observer(Served(head.method, req.route if req is not None else "", status, read, sent, seconds, req))
    except Exception:  # a metrics or log failure must not take the connection down
        log.error("request observer failed: %s", traceback.format_exc())


def _close_body(resp: Response) -> None:
    close = getattr(resp.body, "close", None)
    if callable(close) and not isinstance(resp.body, bytes | bytearray | memoryview):
        close()


def _write(site: Site, sock: socket.socket, resp: Response, close: bool, head_only: bool) -> tuple[bool, int]:
    """Send ``resp``; (False, bytes sent) if the body could not be sent whole (the connection must close)."""
    body = resp.body
    lim = site.limits
    if isinstance(body, bytes | bytearray | memoryview):
        length = len(body)
    else:
        if resp.content_length is None:
            _close_body(resp)
            log.error("streamed response without content_length")
            resp = site.error_response(500, "internal", "internal error")
            body = resp.body
            assert isinstance(body, bytes)
            length, close = len(body), True
        else:
            length = resp.content_length
    head = render_head(resp.status, resp.content_type, length, resp.headers, site.default_headers, close)
    if head_only:
        _close_body(resp)
        send_all(sock, memoryview(head), lim)
        return True, len(head)
    if isinstance(body, bytes | bytearray | memoryview):
        if length <= SMALL_WRITE:
            send_all(sock, memoryview(head + bytes(body)), lim)
        else:
            send_all(sock, memoryview(head), lim)
            send_all(sock, memoryview(body), lim)
        return True, len(head) + length
    send_all(sock, memoryview(head), lim)
    sent = 0
    try:
        for chunk in body:
            mv = memoryview(chunk)
            if sent + len(mv) > length:
                return False, len(head) + sent
            send_all(sock, mv, lim)
            sent += len(mv)
    except (OSError, ssl.SSLError):
        raise
    except Exception:
        log.error("streamed response failed: %s", traceback.format_exc())
        return False, len(head) + sent
    finally:
        _close_body(resp)
    return sent == length, len(head) + sent
