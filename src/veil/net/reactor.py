"""The connection side of the server: one selector thread that owns every connection not being served.

It accepts (within the total and per-IP caps, evicting the longest-idle keep-alive connection
when a cap is reached), runs TLS handshakes non-blocking under a deadline, reads request heads
under one deadline for the whole head, parses them with ``net/http1.py`` and hands complete
heads to the bounded worker queue (503 + Retry-After when it is full). Idle keep-alive
connections wait here, not in a thread, and are closed after ``idle_timeout``. Workers give
connections back when a response is done; a connection being closed after an error lingers
briefly (reading and discarding) so the client sees the answer rather than a reset.

Sockets and ``selectors`` only; the HTTP logic is in ``http1.py`` and ``wire.py``.
"""

from __future__ import annotations

import collections
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from veil.net import trace
from veil.net.fairqueue import FairQueue
from veil.net.http1 import MAX_HEAD, MAX_LINE, HeadError, RequestHead, head_end, parse_head
from veil.net.wire import Limits

log = logging.getLogger("veil.net")

HANDSHAKE, IDLE, HEAD, BUSY, CLOSING = "handshake", "idle", "head", "busy", "closing"
RECV = 16 * 1024
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
TICK = 0.25


class Conn:
    """One client connection. Owned by the reactor, or by exactly one worker while BUSY."""

    __slots__ = ("buf", "deadline", "drained", "idle_since", "ip", "line_seen", "peer", "scanned", "sock", "state")

    def __init__(self, sock: socket.socket, peer: Any) -> None:
        self.sock = sock
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("", 0)
        self.ip = self.peer[0]
        self.state = HANDSHAKE
        self.buf = bytearray()
        self.scanned = 0
        self.line_seen = False
        self.deadline = 0.0
        self.idle_since = 0.0
        self.drained = 0


Job = tuple[Conn, RequestHead, bytes]
# (status, code, message, extra headers) -> the whole response on the wire, through the one header path
RenderError = Callable[[int, str, str, dict[str, str]], bytes]


class Reactor:
    def __init__(self, lsock: socket.socket, ctx: ssl.SSLContext | None, limits: Limits,
                 jobs: FairQueue[Job], render_error: RenderError) -> None:
        self.lsock = lsock
        self.ctx = ctx
        self.limits = limits
        self.jobs = jobs
        self.render_error = render_error
        self.sel = selectors.DefaultSelector()
        self.conns: set[Conn] = set()
        self.per_ip: collections.Counter[str] = collections.Counter()
        self._returned: collections.deque[tuple[Conn, bool, bool]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._counts: dict[str, int] = {}
        self._last_accept_warning = 0.0

    # -- lifecycle (any thread) -----------------------------------------------------------------
    def run(self) -> None:
        self._done.clear()
        try:
            self.lsock.setblocking(False)
            self.sel.register(self.lsock, selectors.EVENT_READ, None)
            self.sel.register(self._wake_r, selectors.EVENT_READ, None)
            while not self._stop.is_set():
                for key, _ in self.sel.select(TICK):
                    if key.fileobj is self.lsock:
                        self._guard(self._accept)
                    elif key.fileobj is self._wake_r:
                        self._guard(self._take_returned)
                    else:
                        self._guard(self._on_event, key.data)
                self._guard(self._expire, time.monotonic())
        finally:
            for c in list(self.conns):
                if c.state != BUSY:
                    self._close(c)
            self.sel.close()
            self._done.set()

    def _guard(self, fn: Callable[..., None], arg: Any = None) -> None:
        # A bug on one connection must not take down the loop that serves all of them.
        try:
            fn() if arg is None else fn(arg)
        except Exception:
            log.exception("reactor error")
            if isinstance(arg, Conn):
                self._close(arg)

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        self._done.wait(5)

    def give_back(self, conn: Conn, keep: bool, linger: bool) -> None:
        """A worker is done with ``conn``: keep it alive, or close it (lingering after an error)."""
        self._returned.append((conn, keep, linger))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake or shutting down

    def counts(self) -> dict[str, int]:
        """Connections by state, as of the last tick (read from any thread)."""
        return dict(self._counts)

    # -- accept, caps, eviction ---------------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, peer = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # Out of file descriptors (EMFILE/ENFILE): free one by closing the longest-idle
                # connection; with none idle, pause briefly rather than spin on a readable listener.
                now = time.monotonic()
                if now - self._last_accept_warning > 10:
                    self._last_accept_warning = now
                    log.warning("accept failed: %s (%d connections open)", e, len(self.conns))
                if not self._evict(None):
                    time.sleep(0.05)
                return
            conn = Conn(sock, peer)
            trace.record("accept", peer)  # a no-op unless VEIL_TRACE_DIR is set (net/trace.py)
            lim = self.limits
            if self.per_ip[conn.ip] >= lim.max_per_ip and not self._evict(conn.ip):
                sock.close()
                continue
            if len(self.conns) >= lim.max_connections and not self._evict(None):
                sock.close()
                continue
            self._open(conn)

    def _evict(self, ip: str | None) -> bool:
        idle = [c for c in self.conns if c.state == IDLE and (ip is None or c.ip == ip)]
        if not idle:
            return False
        self._close(min(idle, key=lambda c: c.idle_since))
        return True

    def _open(self, conn: Conn) -> None:
        sock = conn.sock
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        self.conns.add(conn)
        self.per_ip[conn.ip] += 1
        now = time.monotonic()
        if self.ctx is None:
            self._to_idle(conn, now)
            self.sel.register(sock, selectors.EVENT_READ, conn)
            return
        try:
            conn.sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            self._close(conn)
            return
        conn.deadline = now + self.limits.handshake_timeout
        self.sel.register(conn.sock, selectors.EVENT_READ, conn)
        self._handshake(conn)

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, conn: Conn) -> None:
        if conn.state == HANDSHAKE:
            self._handshake(conn)
        elif conn.state in (IDLE, HEAD):
            self._read_head(conn)
        elif conn.state == CLOSING:
            self._drain(conn)

    def _handshake(self, conn: Conn) -> None:
        assert isinstance(conn.sock, ssl.SSLSocket)
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except (ssl.SSLError, OSError, ValueError):
            self._close(conn)
            return
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        self._to_idle(conn, time.monotonic())
        self._read_head(conn)  # the first request may already sit decrypted in the TLS buffer

    def _to_idle(self, conn: Conn, now: float) -> None:
        conn.state = IDLE
        conn.deadline = now + self.limits.idle_timeout
        conn.idle_since = now

    def _read_head(self, conn: Conn) -> None:
        sock = conn.sock
        while True:
            if head_end(conn.buf, conn.scanned) >= 0 or len(conn.buf) > MAX_HEAD + RECV:
                break
            try:
                data = sock.recv(RECV)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                break
            except (OSError, ValueError):
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            if conn.state == IDLE:
                conn.state = HEAD
                conn.deadline = time.monotonic() + self.limits.head_timeout
            conn.buf += data
        if not conn.buf:
            return
        if conn.state == IDLE:  # bytes given back by a worker (a pipelined request)
            conn.state = HEAD
            conn.deadline = time.monotonic() + self.limits.head_timeout
        # Parse only when it can decide something: the head is complete, the first line just
        # ended (garbage and the HTTP/2 preface fail at once), or a limit may be passed. A client
        # dripping a byte at a time then costs a substring search per byte, not a parse.
        complete = head_end(conn.buf, conn.scanned) >= 0
        first_line = not conn.line_seen and conn.buf.find(b"\r\n", max(0, conn.scanned - 1)) >= 0
        over = len(conn.buf) > (MAX_HEAD if conn.line_seen else MAX_LINE)
        if not (complete or first_line or over):
            conn.scanned = len(conn.buf)
            return
        conn.line_seen = conn.line_seen or first_line
        try:
            parsed = parse_head(conn.buf)
        except HeadError as e:
            self._reject(conn, e.status, e.code, e.message, {})
            return
        if parsed is None:
            conn.scanned = len(conn.buf)
            return
        head, used = parsed
        leftover = bytes(conn.buf[used:])
        conn.buf = bytearray()
        conn.scanned = 0
        conn.line_seen = False
        self.sel.unregister(sock)
        conn.state = BUSY
        try:
            self.jobs.put_nowait((conn, head, leftover))
        except queue.Full:
            conn.state = HEAD
            self.sel.register(sock, selectors.EVENT_READ, conn)
            self._reject(conn, 503, "queue_full", "server busy; retry shortly",
                         {"Retry-After": str(self.limits.retry_after)})

    def _reject(self, conn: Conn, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        log.debug("%s: %d %s", conn.ip, status, message)
        try:
            conn.sock.send(self.render_error(status, code, message, headers))
        except (OSError, ValueError):
            self._close(conn)
            return
        self._linger(conn, time.monotonic())

    def _linger(self, conn: Conn, now: float) -> None:
        # Half-close and read what the client still sends, so our answer is not lost to a reset.
        conn.state = CLOSING
        conn.deadline = now + LINGER_SECONDS
        conn.drained = 0
        conn.buf = bytearray()
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # on an SSLSocket this also drops the TLS layer
        except (OSError, ValueError):
            self._close(conn)

    def _drain(self, conn: Conn) -> None:
        try:
            while conn.drained < LINGER_BYTES:
                data = conn.sock.recv(RECV)
                if not data:
                    break
                conn.drained += len(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except (OSError, ValueError):
            pass
        self._close(conn)

    # -- give-backs and deadlines ---------------------------------------------------------------
    def _take_returned(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        now = time.monotonic()
        while self._returned:
            conn, keep, linger = self._returned.popleft()
            if conn not in self.conns:
                continue
            try:
                conn.sock.setblocking(False)
                self.sel.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError, KeyError):
                self._close(conn)
                continue
            if not keep:
                if linger:
                    self._linger(conn, now)
                else:
                    self._close(conn)
                continue
            leftover = bytes(conn.buf)
            self._to_idle(conn, now)
            conn.buf = bytearray(leftover)
            self._read_head(conn)

    def _expire(self, now: float) -> None:
        by_state = collections.Counter(x.state for x in self.conns)
        self._counts = {"connections": len(self.conns),
                        **{s: by_state.get(s, 0) for s in (HANDSHAKE, IDLE, HEAD, BUSY, CLOSING)}}
        for c in [c for c in self.conns if c.state != BUSY and c.deadline <= now]:
            if c.state == HEAD:
                self._reject(c, 408, "request_timeout", "request head not received in time", {})
                if c.state == CLOSING:
                    self._close(c)  # a slow client gets its 408 but no lingering
            else:
                self._close(c)

    def _close(self, conn: Conn) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            self.per_ip[conn.ip] -= 1
            if self.per_ip[conn.ip] <= 0:
                del self.per_ip[conn.ip]
        try:
            self.sel.unregister(conn.sock)  # a socket must never be closed while registered
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
