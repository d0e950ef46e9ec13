"""Pinned HTTPS client for talking to nodes: keep-alive connection pool per peer, bounded reads.

Wire errors become VeilErrors here, so callers above never see sockets, ssl or http.client.
Every request has a deadline for the whole exchange (``deadline`` seconds, by default the
client's ``timeout``): connect, send and every read share it, and the watchdog of
net/deadline.py shuts the socket down when it passes, so a peer dripping one byte at a time
cannot hold a caller longer than that. Remote error text is sanitised here
(format/remote_text.py) before anything above can print it.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from veil.errors import (
    LedgerError,
    NotAllowedError,
    NotFoundError,
    PaymentRequiredError,
    RemoteError,
    StorageFullError,
    UnavailableError,
    VeilError,
)
from veil.format import cbor
from veil.format.remote_text import clean
from veil.net import trace
from veil.net.deadline import WATCHDOG, Watch
from veil.net.tls import check_pin, client_context
from veil.protocol.transport import DeadlineExceeded

DEFAULT_TIMEOUT = 30.0
MAX_SMALL_RESPONSE = 4 << 20
BUSY_RETRIES = 8  # answers "queue_full" (503 from a full server queue) tried at most this many times (about 3 s of pauses)
BUSY_FIRST_PAUSE = 0.02  # seconds, doubling up to the node's Retry-After
BUSY_LAST_TRY = 0.25  # seconds of the deadline a retry must still have, else the 503 stands


def _is_busy(reply: Reply) -> bool:
    """A 503 the server's queue gave before any handler ran (reactor: code "queue_full"). A
    handler's own 503s (e.g. the storage role's session caps) are answers and are not retried."""
    if reply.status != 503:
        return False
    try:
        v = cbor.decode(reply.body, 64 * 1024)
    except VeilError:
        return False
    return isinstance(v, dict) and v.get("error") == "queue_full"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def cbor(self, max_size: int = MAX_SMALL_RESPONSE) -> Any:
        return cbor.decode(self.body, max_size)


class NodeUnreachable(UnavailableError):
    """A node could not be reached (refused, timed out, or the connection broke)."""


# How a connection reaches its node: (address, timeout, source address) -> a connected socket.
# The default is a TCP connection; an onion circuit (net/circuit_transport.py) hands back the
# innermost end of its tunnel instead, and the pinned TLS below runs over it all the same.
Dial = Callable[[tuple[str, int], float, Any], socket.socket]


class _Conn(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, pin: bytes | None, timeout: float, dial: Dial | None = None) -> None:
        super().__init__(host, port, timeout=timeout, context=client_context())
        self.pin = pin
        self.peer_id: bytes | None = None
        self.fd = -1
        self._dial = dial

    def connect(self) -> None:
        if self._dial is None:
            super().connect()
            assert isinstance(self.sock, ssl.SSLSocket)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            trace.record("direct", self.sock.getsockname(), f"{self.host}:{self.port}")  # no-op unless tracing
        else:  # a tunnel (a socket pair's end): the same TLS, no TCP options
            raw = self._dial((self.host, self.port), self.timeout or DEFAULT_TIMEOUT, None)
            raw.settimeout(self.timeout)
            self.sock = client_context().wrap_socket(raw, server_hostname=self.host)
        assert isinstance(self.sock, ssl.SSLSocket)
        self.fd = self.sock.fileno()
        self.peer_id = check_pin(self.sock, self.pin, f"{self.host}:{self.port}")


def raise_for_reply(status: int, body: bytes, where: str) -> None:
    """Translate an error reply into the matching VeilError."""
    code, message = "error", f"HTTP {status}"
    try:
        v = cbor.decode(body, 64 * 1024)
        if isinstance(v, dict):
            code = clean(v.get("error", code), 64)
            message = clean(v.get("message", message))
    except VeilError:
        pass
    text = f"{clean(where)}: {message}"
    if status == 404:
        raise NotFoundError(text)
    if status == 507:
        raise StorageFullError(text)
    if status == 402:
        raise PaymentRequiredError(text)
    if status == 403:
        raise NotAllowedError(text)
    if status == 400 and code not in ("bad_request", "error", "too_large"):
        raise LedgerError(text, code)
    raise RemoteError(f"{text} ({code})")


class PeerClient:
    """Requests to one node, pinned to its node id (or learning it when ``node_id`` is None)."""

    def __init__(self, host: str, port: int, node_id: bytes | None, timeout: float = DEFAULT_TIMEOUT,
                 dial: Dial | None = None) -> None:  # fmt: skip
        self.host = host
        self.port = port
        self.node_id = node_id
        self.timeout = timeout
        self.dial = dial
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"node {self.host}:{self.port}"

    def _get(self) -> _Conn:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Conn(self.host, self.port, self.node_id, self.timeout, self.dial)

    def _put(self, c: _Conn) -> None:
        with self._lock:
            if len(self._idle) < 16:  # many files at once share these (bounded in flight by the transport)
                self._idle.append(c)
                return
        c.close()

    def close(self) -> None:
        with self._lock:
            for c in self._idle:
                c.close()
            self._idle.clear()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | memoryview | None = None,
        headers: dict[str, str] | None = None,
        max_response: int = MAX_SMALL_RESPONSE,
        into: memoryview | None = None,
        check: bool = True,
        deadline: float | None = None,
    ) -> Reply:
        """One request. With ``into``, a 200 body is read straight into that buffer (it must fit).

        ``deadline``: seconds for the whole exchange (default: this client's timeout). A node
        whose queue is full answers 503 "queue_full" before any handler saw the request, so that answer
        is retried here after a short, growing pause while the deadline allows (BUSY_RETRIES)."""
        limit = self.timeout if deadline is None else deadline
        end = time.monotonic() + limit
        pause = BUSY_FIRST_PAUSE
        for _ in range(BUSY_RETRIES):
            reply = self._request_once(method, path, body, headers, max_response, into, end - time.monotonic())
            wait = pause * (0.5 + random.random())  # jittered: many clients turned away at once spread out
            if not _is_busy(reply) or time.monotonic() + wait + BUSY_LAST_TRY >= end:
                break
            time.sleep(wait)
            after = reply.headers.get("retry-after", "1")
            pause = min(pause * 2, float(after) if after.isdigit() else 1.0)
        if check and reply.status >= 300:
            raise_for_reply(reply.status, reply.body, self.where)
        return reply

    def _request_once(self, method: str, path: str, body: bytes | memoryview | None,
                      headers: dict[str, str] | None, max_response: int, into: memoryview | None,
                      limit: float) -> Reply:  # fmt: skip
        if limit <= 0:
            raise DeadlineExceeded(f"{self.where} did not answer in time")
        watch = WATCHDOG.watch(time.monotonic() + limit)
        try:
            for attempt in (0, 1):
                conn = self._get() if attempt == 0 else _Conn(self.host, self.port, self.node_id, self.timeout, self.dial)
                reused = conn.sock is not None
                try:
                    reply, keep = self._exchange(conn, method, path, body, headers, max_response, into, watch, limit)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    # A pooled connection the node had already closed (idle keep-alive): the node
                    # never saw this request, so it is sent once more on a fresh connection.
                    if reused and attempt == 0 and not watch.fired:
                        continue
                    raise
                except BaseException:
                    conn.close()
                    raise
                WATCHDOG.release(watch)
                if keep and not watch.fired:  # (a socket the watchdog shut down is not pooled)
                    self._put(conn)
                else:
                    conn.close()
                break
        except (ConnectionError, TimeoutError, ssl.SSLError, http.client.HTTPException, OSError, ValueError) as e:
            WATCHDOG.release(watch)
            if watch.fired:
                raise DeadlineExceeded(f"{self.where} did not answer within {limit:g} s") from e
            raise NodeUnreachable(f"{self.where} unreachable: {e.__class__.__name__}: {clean(e)}") from e
        except VeilError:
            WATCHDOG.release(watch)
            if watch.fired:
                raise DeadlineExceeded(f"{self.where} did not answer within {limit:g} s") from None
            raise
        return reply

    def _exchange(self, conn: _Conn, method: str, path: str, body: bytes | memoryview | None,
                  headers: dict[str, str] | None, max_response: int, into: memoryview | None,
                  watch: Watch, limit: float) -> tuple[Reply, bool]:  # fmt: skip
        """Send one request on ``conn`` and read the whole reply; (reply, keep the connection)."""
        if conn.sock is None:
            conn.timeout = min(self.timeout, limit)
            conn.connect()
        else:
            conn.sock.settimeout(min(self.timeout, limit))
        WATCHDOG.arm(watch, conn.fd)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        length = resp.getheader("Content-Length")
        n = int(length) if length and length.isdigit() else -1
        if n < 0:
            raise RemoteError(f"{self.where}: reply without Content-Length")
        if resp.status == 200 and into is not None:
            if n > len(into):
                raise RemoteError(f"{self.where}: reply of {n} bytes is larger than expected")
            got = 0
            while got < n:
                r = resp.readinto(into[got:n])
                if not r:
                    raise NodeUnreachable(f"{self.where}: connection closed mid-reply")
                got += r
            data = b""
        else:
            if n > max_response:
                raise RemoteError(f"{self.where}: reply of {n} bytes exceeds the {max_response}-byte limit")
            data = resp.read(n)
            if len(data) != n:
                raise NodeUnreachable(f"{self.where}: connection closed mid-reply")
        reply = Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        return reply, not resp.will_close

    def call(self, method: str, path: str, value: Any = None, max_response: int = MAX_SMALL_RESPONSE,
             deadline: float | None = None, headers: dict[str, str] | None = None) -> Any:  # fmt: skip
        """A CBOR request/response round trip (``headers`` added to the request's)."""
        body = cbor.encode(value) if value is not None else None
        hdrs = {"Content-Type": "application/cbor"} if body is not None else {}
        hdrs.update(headers or {})
        return self.request(method, path, body, hdrs, max_response, deadline=deadline).cbor(max_response)

    def learn_node_id(self) -> bytes:
        """Connect once and return the node id the peer proved (for bootstrap by address only)."""
        conn = _Conn(self.host, self.port, self.node_id, self.timeout, self.dial)
        try:
            conn.connect()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
            raise NodeUnreachable(f"{self.where} unreachable: {e}") from e
        assert conn.peer_id is not None
        self._put(conn)
        return conn.peer_id
