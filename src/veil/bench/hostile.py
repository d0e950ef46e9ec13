"""The hostile half of `veil bench abuse`: a mixed attack on one node, run as its own process.

``python -m veil.bench.hostile --port P --seconds S --scale X`` prints ``ready`` once the load
has started and, when its stdin closes or ``S`` seconds have passed (whichever is first), one
JSON line: for every attack kind, how many times the node gave which answer (an HTTP status,
``closed``, ``reset``, ``timeout`` — the node did not answer within our patience —,
``open_at_end`` for connections still held when the load stopped, ...).

Every connection goes to 127.0.0.1 only. Each kind comes from its own loopback source address
(127.0.0.10 and up), so a node's per-client bounds apply per kind and its total bounds to the
sum; the normal client of the bench keeps 127.0.0.1 to itself. Counts are bounded (``scale``
multiplies them; 1.0 is the full soak) and every loop ends at the deadline.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable

from veil.format import cbor
from veil.net.tls import client_context
from veil.protocol.storage import UploadRequest, oneshot_path, upload_path, uploads_path
from veil.testing.shares import fake_file

HOST = "127.0.0.1"
DRIP_ROUNDS = 10  # a dripping connection the node ends is replaced, up to this many times over
PATIENCE = 10.0  # seconds we wait for an answer the node owes us before calling it a "timeout"
KINDS = ("upload_flood", "slowloris_head", "slowloris_body", "idle_keepalive", "oversized_body",
         "te_cl_smuggle", "two_host", "two_content_length", "bad_request_line", "http2_preface",
         "huge_header", "negative_content_length", "tiny_blocks", "garbage_tls")


class Tally:
    """Thread-safe counts of (attack kind, outcome)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}

    def add(self, kind: str, outcome: str, n: int = 1) -> None:
        with self._lock:
            self._c[kind][outcome] += n

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(sorted(v.items())) for k, v in self._c.items()}


def outcome_of(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(e, ssl.SSLError):
        return "tls_error"
    if isinstance(e, EOFError | ConnectionError):
        return "closed"
    return "error_" + e.__class__.__name__


def connect(port: int, src: str, timeout: float = PATIENCE, tls: bool = True) -> socket.socket:
    raw = socket.create_connection((HOST, port), timeout=timeout, source_address=(src, 0))
    if not tls:
        return raw
    try:
        return client_context().wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def head(method: str, path: str, *lines: str) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n" + "".join(x + "\r\n" for x in lines) + "\r\n").encode()


class KeptConnection:
    """One attacker's keep-alive connection: ``send`` (re)connects when needed, sends one request,
    tallies the answer's status (or what went wrong) under ``kind``, and drops the connection
    when the node closes it or it breaks."""

    def __init__(self, port: int, src: str, tally: Tally, kind: str) -> None:
        self.port, self.src, self.tally, self.kind = port, src, tally, kind
        self.s: socket.socket | None = None
        self.buf = bytearray()

    def send(self, req: bytes, label: str = "") -> tuple[int, bytes] | None:
        try:
            if self.s is None:
                self.s, self.buf = connect(self.port, self.src), bytearray()
            self.s.sendall(req)
            status, reply, close = read_reply(self.s, self.buf)
            self.tally.add(self.kind, f"{label}{status}")
            if close:
                self.close()
            return status, reply
        except (OSError, EOFError, ValueError) as e:
            self.tally.add(self.kind, outcome_of(e))
            self.close()
            return None

    def close(self) -> None:
        if self.s is not None:
            self.s.close()
        self.s = None


def read_reply(s: socket.socket, buf: bytearray) -> tuple[int, bytes, bool]:
    """Read one whole response (head and Content-Length body) from ``s``: status, body, and
    whether the node said it closes the connection."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 64 * 1024:
            raise EOFError("response head too large")
        got = s.recv(16384)
        if not got:
            raise EOFError("closed")
        buf += got
    end = buf.index(b"\r\n\r\n") + 4
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, close = 0, False
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
        elif k.strip().lower() == "connection":
            close = v.strip().lower() == "close"
    while len(buf) < end + length:
        got = s.recv(65536)
        if not got:
            raise EOFError("closed mid-body")
        buf += got
    body = bytes(buf[end : end + length])
    del buf[: end + length]
    return status, body, close


def poll_closed(s: socket.socket) -> str | None:
    """Without blocking: None while the connection is open and silent, else what ended it."""
    try:
        s.settimeout(0.0005)
        got = s.recv(4096)
        if not got:
            return "closed"
        if got[0] == 0x15:  # a TLS alert record
            return "tls_alert"
        text = got.decode("latin-1")
        return text.split()[1] if text.startswith("HTTP/1.1 ") and len(text.split()) > 1 else "data"
    except (TimeoutError, ssl.SSLWantReadError, BlockingIOError):
        return None
    except OSError as e:
        return outcome_of(e)


class Load:
    """The attack workers; all stop at ``deadline`` or when ``stop`` is set."""

    def __init__(self, port: int, seconds: float, scale: float) -> None:
        self.port = port
        self.deadline = time.monotonic() + seconds
        self.scale = scale
        self.stop = threading.Event()
        self.tally = Tally()
        self.threads: list[threading.Thread] = []
        self._src = 10

    def count(self, full: int) -> int:
        return max(1, int(full * self.scale))

    def running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def pause(self, seconds: float) -> None:
        self.stop.wait(max(0.0, min(seconds, self.deadline - time.monotonic())))

    def spawn(self, fn: Callable[[str], None]) -> None:
        src = f"127.0.0.{self._src}"
        self._src += 1
        t = threading.Thread(target=fn, args=(src,), name=f"{fn.__name__}@{src}", daemon=True)
        self.threads.append(t)

    def start(self) -> None:
        for _ in range(4):
            self.spawn(self.upload_flood)
        self.spawn(self.slowloris_head)
        self.spawn(self.slowloris_body)
        for _ in range(3):
            self.spawn(self.idle_keepalive)
        for _ in range(2):
            self.spawn(self.oversized_body)
        self.spawn(self.malformed)
        self.spawn(self.tiny_blocks)
        self.spawn(self.garbage_tls)
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        end = time.monotonic() + PATIENCE + 2
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))

    # -- upload sessions that never finish -------------------------------------------------
    def upload_flood(self, src: str) -> None:
        conn = KeptConnection(self.port, src, self.tally, "upload_flood")
        for i in range(self.count(400)):
            if not self.running():
                break
            body = cbor.encode(UploadRequest(os.urandom(16), 0, 4, 65536, 65536).to_value())
            got = conn.send(head("POST", uploads_path(), f"Content-Length: {len(body)}") + body)
            if got is not None and got[0] == 200 and i % 4 == 0 and conn.s is not None:
                uid = str(cbor.decode(got[1], 4096)["id"])  # some get a first block (a temp file)
                block = bytes(32 + 65536)
                conn.send(head("PUT", upload_path(uid, 0), f"Content-Length: {len(block)}") + block, "put_")
            self.pause(0.02)
        conn.close()

    # -- one byte per second: on a request head, and on a body -----------------------------
    def slowloris_head(self, src: str) -> None:
        def open_one() -> tuple[socket.socket, bytes]:
            s = connect(self.port, src)
            s.sendall(f"GET /v1/node HTTP/1.1\r\nHost: {HOST}\r\nX-Drip: ".encode())
            return s, b"a"

        self._drip("slowloris_head", open_one, self.count(40))

    def slowloris_body(self, src: str) -> None:
        def open_one() -> tuple[socket.socket, bytes]:
            s, buf = connect(self.port, src), bytearray()
            body = cbor.encode(UploadRequest(os.urandom(16), 0, 4, 65536, 65536).to_value())
            s.sendall(head("POST", uploads_path(), f"Content-Length: {len(body)}") + body)
            status, reply, close = read_reply(s, buf)
            if status == 200 and not close:  # a real session: the body is read by the upload handler
                uid = str(cbor.decode(reply, 4096)["id"])
                s.sendall(head("PUT", upload_path(uid, 0), f"Content-Length: {32 + 65536}"))
                return s, bytes(64)
            s.close()  # no session to be had: a real one-shot share, dripped
            self.tally.add("slowloris_body", f"session_{status}")
            one = fake_file(os.urandom(16), nseg=2, bsize=4096)[0]
            payload = one.oneshot()
            s = connect(self.port, src)
            s.sendall(head("PUT", oneshot_path(one.si, 0), f"Content-Length: {len(payload)}"))
            return s, payload

        self._drip("slowloris_body", open_one, self.count(20))

    def _drip(self, kind: str, open_one: Callable[[], tuple[socket.socket, bytes]], width: int) -> None:
        """Keep ``width`` connections dripping one byte per second; one the node ends is replaced
        (at most ``DRIP_ROUNDS`` x ``width`` in all) until the load stops."""
        drips: list[tuple[socket.socket, bytes]] = []
        opened, pos = 0, 0
        while self.running():
            while len(drips) < width and opened < DRIP_ROUNDS * width and self.running():
                opened += 1
                try:
                    drips.append(open_one())
                except (OSError, EOFError, ValueError) as e:
                    self.tally.add(kind, outcome_of(e))
            for item in list(drips):
                s, payload = item
                ended = poll_closed(s)
                if ended is None:
                    try:
                        s.settimeout(PATIENCE)
                        s.sendall(payload[pos % len(payload) : pos % len(payload) + 1])
                    except OSError as e:
                        ended = outcome_of(e)
                if ended is not None:
                    self.tally.add(kind, ended)
                    s.close()
                    drips.remove(item)
            pos += 1
            self.pause(1.0)
        self._hold_end(kind, [s for s, _ in drips])

    def _hold_end(self, kind: str, socks: list[socket.socket]) -> None:
        for s in socks:
            self.tally.add(kind, poll_closed(s) or "open_at_end")
            s.close()

    # -- hundreds of idle keep-alive connections -------------------------------------------
    def idle_keepalive(self, src: str) -> None:
        socks: list[socket.socket] = []
        for _ in range(self.count(100)):
            if not self.running():
                break
            try:
                s = connect(self.port, src)
                s.sendall(head("GET", "/v1/node"))
                self.tally.add("idle_keepalive", str(read_reply(s, bytearray())[0]))
                socks.append(s)
            except (OSError, EOFError, ValueError) as e:
                self.tally.add("idle_keepalive", outcome_of(e))
            self.pause(0.01)
        while socks and self.running():
            for s in list(socks):
                ended = poll_closed(s)
                if ended is not None:
                    self.tally.add("idle_keepalive", f"ended_{ended}")
                    s.close()
                    socks.remove(s)
            self.pause(1.0)
        self._hold_end("idle_keepalive", socks)

    # -- bodies announced far too large, to ids and paths that do not exist ----------------
    def oversized_body(self, src: str) -> None:
        for i in range(self.count(600)):
            if not self.running():
                break
            variant = i % 3
            if variant == 0:
                req = head("PUT", upload_path(os.urandom(16).hex(), 0), f"Content-Length: {32 << 20}")
            elif variant == 1:
                req = head("PUT", upload_path(os.urandom(16).hex(), 0), f"Content-Length: {1 << 40}")
            else:
                req = head("PUT", oneshot_path(os.urandom(16), 0), f"Content-Length: {32 << 20}")
            self.tally.add("oversized_body", self._one_shot(src, req + bytes(65536))[0])
            self.pause(0.05)

    def _one_shot(self, src: str, data: bytes, more: bool = False) -> list[str]:
        """Send ``data`` on a fresh connection; the statuses answered (all of them with ``more``)."""
        try:
            s = connect(self.port, src)
        except OSError as e:
            return [outcome_of(e)]
        got: list[str] = []
        buf = bytearray()
        try:
            try:
                s.sendall(data)
            except OSError:
                pass  # the node may answer and close before taking all of it
            while True:
                got.append(str(read_reply(s, buf)[0]))
                if not more:
                    break
                s.settimeout(2.0)
        except (OSError, EOFError, ValueError) as e:
            if not got:
                got.append(outcome_of(e))
        finally:
            s.close()
        return got

    # -- malformed requests and request smuggling ------------------------------------------
    def malformed(self, src: str) -> None:
        smuggled = f"GET /v1/node HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        size_line = f"{len(smuggled):x}\r\n".encode()
        cases: list[tuple[str, bytes]] = [
            # TE.CL: Content-Length covers only the chunk-size line; a server that ignores
            # Transfer-Encoding reads the chunk data as a second request.
            ("te_cl_smuggle", head("POST", uploads_path(), f"Content-Length: {len(size_line)}",
                                   "Transfer-Encoding: chunked") + size_line + smuggled + b"\r\n0\r\n\r\n"),
            ("two_host", f"GET /v1/node HTTP/1.1\r\nHost: {HOST}\r\nHost: other.example\r\n\r\n".encode()),
            ("two_content_length", head("POST", uploads_path(), "Content-Length: 5", "Content-Length: 50") + bytes(5)),
            ("bad_request_line", b"HELLO THERE\r\n\r\n"),
            ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            ("huge_header", head("GET", "/v1/node", "X-Big: " + "a" * 70000)),
            ("negative_content_length", head("POST", uploads_path(), "Content-Length: -1")),
        ]
        for i in range(self.count(1400)):
            if not self.running():
                break
            kind, data = cases[i % len(cases)]
            self.tally.add(kind, "+".join(self._one_shot(src, data, more=kind == "te_cl_smuggle")))
            self.pause(0.02)

    # -- sessions and one-shots with tiny blocks or too many of them -----------------------
    def tiny_blocks(self, src: str) -> None:
        si = os.urandom(16)
        posts = [cbor.encode(UploadRequest(si, 0, nseg, bsize, bsize).to_value())
                 for nseg, bsize in ((2**21, 1), (4, 16), (2**19, 1024))]
        one = fake_file(si, nseg=3, bsize=16)[0]
        conn = KeptConnection(self.port, src, self.tally, "tiny_blocks")
        for i in range(self.count(1500)):
            if not self.running():
                break
            if i % 4 < 3:
                req = head("POST", uploads_path(), f"Content-Length: {len(posts[i % 4])}") + posts[i % 4]
            else:
                payload = one.oneshot()
                req = head("PUT", oneshot_path(one.si, 0), f"Content-Length: {len(payload)}") + payload
            conn.send(req)
            self.pause(0.02)
        conn.close()

    # -- bursts of garbage where a TLS handshake should be ---------------------------------
    def garbage_tls(self, src: str) -> None:
        for _ in range(60):
            if not self.running():
                break
            socks: list[socket.socket] = []
            for i in range(self.count(20)):
                try:
                    s = connect(self.port, src, tls=False)
                    if i % 3 == 0:
                        s.sendall(os.urandom(512))
                    elif i % 3 == 1:  # the start of a ClientHello, then nothing
                        s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(40))
                    socks.append(s)  # i % 3 == 2: connect and say nothing
                except OSError as e:
                    self.tally.add("garbage_tls", outcome_of(e))
            self.pause(1.0)
            for s in socks:
                self.tally.add("garbage_tls", poll_closed(s) or "open_1s")
                s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    load = Load(a.port, a.seconds, a.scale)
    load.start()
    print("ready", flush=True)

    def watch_stdin() -> None:
        sys.stdin.read()
        load.stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    load.pause(a.seconds)
    load.join()
    print(json.dumps(load.tally.snapshot(), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
