"""Hostile HTTP against real processes: a `veil node run` over real TLS and a real `veil gateway`.

Request smuggling (TE.CL, two Host headers), a flood of idle TLS connections from one address,
slow-loris heads and dripping bodies, a full worker queue, and the server's own error pages,
which must carry the gateway's security headers. The node runs with short deadlines
(``--http-limit``) so each attack is cut off in seconds; the assertions are about what the
server does (status, close, bounded threads and descriptors), never about how fast.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.format import cbor
from veil.net.client import PeerClient
from veil.net.tls import client_context

pytestmark = pytest.mark.integration

LIMITS = ["head_timeout=2", "io_timeout=2", "handshake_timeout=3", "max_per_ip=100", "workers=4", "queue=4"]
SECURITY = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


class NodeProc:
    def __init__(self, root: Path, limits: list[str], nofile: int | None = None) -> None:
        self.data = root
        args = [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(root),
                "--listen", "127.0.0.1:0", "--role", "storage", "--storage-admission", "open"]
        for item in limits:
            args += ["--http-limit", item]
        def lower_nofile() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**os.environ, "VEIL_HOME": str(root.parent)}, preexec_fn=lower_nofile)
        info = root / "node.json"
        for _ in range(300):
            if info.exists() or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        assert info.exists(), (self.proc.stderr.read() if self.proc.stderr else b"").decode()
        meta = json.loads(info.read_text())
        self.port = int(meta["port"])
        self.node_id = bytes.fromhex(meta["node_id"])
        self.pid = self.proc.pid

    def status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def get_node(self) -> dict[str, object]:
        c = PeerClient("127.0.0.1", self.port, self.node_id, timeout=30)
        try:
            value = c.call("GET", "/v1/node")
        finally:
            c.close()
        assert isinstance(value, dict)
        return value

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProc]:
    n = NodeProc(tmp_path_factory.mktemp("hostile") / "node", LIMITS)
    try:
        yield n
    finally:
        n.stop()


def tls(port: int, source: str = "127.0.0.1", timeout: float = 30) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return client_context().wrap_socket(raw)


def read_all(s: socket.socket, limit: float = 30) -> bytes:
    """Everything the server sends until it closes (or ``limit`` seconds pass: then the test fails)."""
    s.settimeout(limit)
    out = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return out
            out += data
    except (ConnectionResetError, ssl.SSLError):
        return out
    except TimeoutError:
        pytest.fail(f"server kept the connection open; got {out[:200]!r}")


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        raw = rest[n:]
    return out


def test_te_cl_smuggling_is_rejected_and_the_connection_closed(node: NodeProc) -> None:
    smuggled = b"GET /v1/node HTTP/1.1\r\nHost: other-tenant\r\n\r\n"
    chunk = b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n"
    s = tls(node.port)
    s.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
              + chunk)
    got = responses(read_all(s))
    assert len(got) == 1, got  # the smuggled GET was never answered
    status, headers, body = got[0]
    assert status == 400 and headers["connection"] == "close"
    assert cbor.decode(body, 1024)["error"] == "bad_request"


def test_two_hosts_and_unimplemented_transfer_encoding(node: NodeProc) -> None:
    for req, want in ((b"GET /v1/node HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                      (b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
                      (b"GET /v1/node HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
                      (b"GET http://b/v1/node HTTP/1.1\r\nHost: a\r\n\r\n", 400),
                      (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)):
        s = tls(node.port)
        s.sendall(req)
        got = responses(read_all(s))
        assert [g[0] for g in got] == [want], req
        assert got[0][1]["connection"] == "close"
    # a good keep-alive request still works, twice on one connection (pipelined)
    s = tls(node.port)
    s.sendall(b"GET /v1/node HTTP/1.1\r\nHost: a\r\n\r\nGET /v1/node HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert [g[0] for g in responses(read_all(s))] == [200, 200]


def test_expect_100_continue_is_answered_when_the_handler_reads(node: NodeProc) -> None:
    s = tls(node.port)
    s.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n"
              b"Connection: close\r\n\r\n")
    s.settimeout(30)
    interim = s.recv(65536)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(b"\xa0")  # an empty CBOR map: not a valid upload request
    got = responses(read_all(s))
    assert [g[0] for g in got] == [400] and cbor.decode(got[0][2], 1024)["error"] == "bad_request"


def test_idle_flood_from_one_address_does_not_stop_another_client(node: NodeProc) -> None:
    node.get_node()
    threads_before, fds_before = node.status("Threads"), node.fds()
    flood: list[socket.socket] = []
    try:
        for _ in range(320):  # more than max_per_ip: the flooder's own oldest idle connections go first
            try:
                flood.append(tls(node.port, source="127.0.0.2"))
            except (OSError, ssl.SSLError):
                pass  # refused or evicted mid-handshake: also fine
        assert len(flood) >= 100
        status = node.get_node()  # another client is served at once
        assert status["node_id"] == node.node_id
        http = status["http"]
        assert isinstance(http, dict) and http["workers"] == 4
        assert http["connections"] <= 100 + 2  # the server's own count: the flooder's cap, plus us
        assert node.status("Threads") <= threads_before + 2  # no thread per connection
        assert node.fds() <= fds_before + 100 + 8  # at most max_per_ip of the flood stays open
        # Even a flood from the client's own address leaves it served: idle connections make room.
        for _ in range(150):
            try:
                flood.append(tls(node.port))
            except (OSError, ssl.SSLError):
                pass
        assert node.get_node()["node_id"] == node.node_id
        assert node.status("Threads") <= threads_before + 2
    finally:
        for s in flood:
            s.close()


def test_out_of_descriptors_the_node_frees_idle_connections(tmp_path: Path) -> None:
    # Caps set above the descriptor limit, so accept() itself fails (EMFILE) under the flood.
    n = NodeProc(tmp_path / "node", ["max_per_ip=1000", "max_connections=1000"], nofile=96)
    flood: list[socket.socket] = []
    try:
        for i in range(150):
            try:
                flood.append(tls(n.port, source="127.0.0.2", timeout=10))
            except (OSError, ssl.SSLError) as e:
                pytest.fail(f"connection {i} was not taken ({e}): idle ones should make room")
        assert n.get_node()["node_id"] == n.node_id
        assert n.fds() <= 96
    finally:
        for s in flood:
            s.close()
        n.stop()


def test_slow_loris_head_and_dripping_body_are_cut_off(node: NodeProc) -> None:
    s = tls(node.port)
    s.sendall(b"GET /v1/node HTTP/1.1\r\nHost: a\r\n")
    closed = False
    for i in range(60):  # one header line every half second: the head deadline is 2 s
        try:
            s.sendall(b"X-%d: v\r\n" % i)
            s.settimeout(0.5)
            data = s.recv(65536)
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            closed = True
            break
        assert data.startswith(b"HTTP/1.1 408 "), data
        closed = True
        break
    assert closed, "a head dripped for 30 s was never cut off"

    s = tls(node.port)
    s.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nContent-Type: application/cbor\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(60):  # one byte every half second, far below the minimum rate
        try:
            s.sendall(b"\xa0")
            s.settimeout(0.5)
            if s.recv(65536) == b"":
                break
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            break
    else:
        pytest.fail("a body dripped for 30 s was never cut off")
    assert node.get_node()["node_id"] == node.node_id


def test_full_queue_answers_503_with_retry_after(node: NodeProc) -> None:
    # workers=4, queue=4: eight stalled bodies fill both; the ninth request is refused at once.
    stalled = []
    for _ in range(8):
        s = tls(node.port)
        s.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        stalled.append(s)
    time.sleep(0.3)  # let the reactor hand the heads over (ordering only; no timing is asserted)
    s = tls(node.port)
    s.sendall(b"GET /v1/node HTTP/1.1\r\nHost: a\r\n\r\n")
    got = responses(read_all(s))
    for t in stalled:
        t.close()
    assert got and got[0][0] == 503 and got[0][1]["retry-after"] == "1", got
    assert node.get_node()["node_id"] == node.node_id  # and recovers once the stalls are cut off


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    home = tmp_path_factory.mktemp("gw-home")
    p = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "gateway", "--listen", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "VEIL_HOME": str(home)})
    assert p.stderr is not None
    line = b""
    for _ in range(50):
        line = p.stderr.readline()
        if b"serving" in line or not line:
            break
    m = re.search(rb"http://127\.0\.0\.1:(\d+)", line)
    assert m, line
    try:
        yield int(m.group(1))
    finally:
        p.terminate()
        p.wait(10)


@pytest.mark.parametrize("raw,status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"p" * 17000 + b"\r\n\r\n", 431),
    (b"GARBAGE\r\n\r\n", 400),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 404),
])
def test_gateway_error_pages_carry_the_security_headers(gateway: int, raw: bytes, status: int) -> None:
    s = socket.create_connection(("127.0.0.1", gateway), timeout=30)
    s.sendall(raw)
    got = responses(read_all(s))
    assert got and got[0][0] == status
    headers = got[0][1]
    for name in SECURITY:
        assert name in headers, (status, name, headers)
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
