"""Copy bytes both ways between two sockets (either may be TLS) until one side ends.

Used by a relay (its TLS session with the predecessor <-> plain TCP to the successor) and by
the client's circuit (its TLS session with relay i <-> one end of a socket pair, on whose other
end TLS with relay i+1 runs). One thread per splice and non-blocking sockets: an ``SSLSocket``
must not be read and written by two threads at once, so both directions run in this one loop.
At most ``CHUNK`` bytes wait per direction (memory per stream is bounded by 2 x CHUNK plus the
sockets' own buffers); a direction whose destination does not drain stops reading its source.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 64 << 10
_WAIT = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass
class SpliceEnd:
    """How a splice ended: which side (``a``/``b``) and why (``closed``, ``reset``, ``tls``: a TLS
    failure such as a bad record MAC, ``idle``, ``lifetime``, ``stopped``), and bytes moved."""

    side: str = ""
    why: str = ""
    detail: str = ""
    a_to_b: int = 0
    b_to_a: int = 0


class _Dir:
    __slots__ = ("buf", "dst", "eof", "moved", "src")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.buf = memoryview(b"")
        self.eof = False
        self.moved = 0


def _why(e: BaseException) -> str:
    if isinstance(e, ssl.SSLEOFError):
        return "reset"  # the TCP connection ended without a TLS close: the peer died or cut it
    if isinstance(e, ssl.SSLError):
        return "tls"
    return "reset"


def splice(a: socket.socket, b: socket.socket, *, idle: float, lifetime: float,
           stop: threading.Event | None = None, on_bytes: Callable[[int], None] | None = None,
           on_end: Callable[[SpliceEnd], None] | None = None, rate: float = 0.0,
           sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> SpliceEnd:  # fmt: skip
    """Run until a side closes or fails, nothing moves for ``idle`` s, or ``lifetime`` s pass.
    Closes both sockets. ``on_bytes`` is called with each count forwarded (either way);
    ``on_end`` with the outcome before the sockets close (so whoever sees them close can read it).
    ``rate`` > 0: at most that many bytes per second on average (both ways together) after a
    first ``CHUNK`` — the splice waits instead of reading more (a free relay's per-circuit bound)."""
    a.setblocking(False)
    b.setblocking(False)
    ab, ba = _Dir(a, b), _Dir(b, a)
    end = SpliceEnd()
    start = last = clock()
    try:
        while True:
            moved = False
            for d, side in ((ab, "a"), (ba, "b")):
                if d.buf:
                    try:
                        n = d.dst.send(d.buf[:CHUNK])
                    except _WAIT:
                        n = 0
                    except (OSError, ssl.SSLError) as e:
                        end.side, end.why, end.detail = ("b" if side == "a" else "a"), _why(e), str(e)
                        return end
                    if n:
                        d.buf = d.buf[n:]
                        d.moved += n
                        moved = True
                        if on_bytes is not None:
                            on_bytes(n)
                if not d.buf and not d.eof:
                    try:
                        data = d.src.recv(CHUNK)
                    except _WAIT:
                        continue
                    except (OSError, ssl.SSLError) as e:
                        end.side, end.why, end.detail = side, _why(e), str(e)
                        return end
                    if not data:
                        d.eof = True
                    else:
                        d.buf = memoryview(data)
                        moved = True
            for d, side in ((ab, "a"), (ba, "b")):
                if d.eof and not d.buf:
                    end.side, end.why = side, "closed"
                    return end
            now = clock()
            if moved:
                last = now
                if rate > 0:
                    ahead = (ab.moved + ba.moved - CHUNK) / rate - (now - start)
                    if ahead > 0:
                        sleep(min(ahead, 1.0))
                continue
            if stop is not None and stop.is_set():
                end.why = "stopped"
                return end
            if now - last > idle:
                end.why = "idle"
                return end
            if now - start > lifetime:
                end.why = "lifetime"
                return end
            if any(isinstance(s, ssl.SSLSocket) and s.pending() for s in (a, b)):
                continue
            # poll, not select: a busy relay holds more than select's 1024 descriptors
            want: dict[int, int] = {}
            for d in (ab, ba):
                if d.buf:
                    want[d.dst.fileno()] = want.get(d.dst.fileno(), 0) | select.POLLOUT
                elif not d.eof:
                    want[d.src.fileno()] = want.get(d.src.fileno(), 0) | select.POLLIN
            poller = select.poll()
            for fd, ev in want.items():
                poller.register(fd, ev)
            poller.poll(min(1.0, idle) * 1000)
    finally:
        end.a_to_b, end.b_to_a = ab.moved, ba.moved
        if on_end is not None:
            on_end(end)
        for s in (a, b):
            _close(s)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
