"""The server's connection policy in process, over plain TCP on 127.0.0.1: per-IP and total caps
(evict the longest-idle keep-alive connection, else refuse), idle reaping, pipelining, and the
server-wide default headers on its own answers. (Over TLS against a real node:
tests/integration/test_http_hostile.py.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from veil.net.server import HTTPSServer, Limits, Request, Response, Router, serve


def _hello(req: Request) -> Response:
    return Response(body=b"hello " + req.client_ip.encode(), content_type="text/plain")


@pytest.fixture
def make() -> Iterator[Callable[..., HTTPSServer]]:
    servers: list[HTTPSServer] = []

    def start(**limits: Any) -> HTTPSServer:
        r = Router()
        r.add("GET", "/", _hello)
        srv = serve(("127.0.0.1", 0), r, None, limits=Limits(**limits),
                    default_headers={"X-Content-Type-Options": "nosniff"})
        servers.append(srv)
        return srv

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def connect(srv: HTTPSServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10)


def get(s: socket.socket) -> bytes:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return get_rest(s)


def closed(s: socket.socket) -> bool:
    """True once the server has closed ``s`` (waits up to the socket timeout)."""
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_per_ip_cap_evicts_the_longest_idle_connection(make: Callable[..., HTTPSServer]) -> None:
    srv = make(max_per_ip=3)
    conns = [connect(srv) for _ in range(3)]
    for c in conns:
        assert b"200 OK" in get(c)  # all three are now idle keep-alive connections
    newest = connect(srv)
    assert b"hello 127.0.0.1" in get(newest)
    assert closed(conns[0])  # the oldest idle one made room
    assert b"200 OK" in get(conns[2])  # the others still serve


def test_total_cap_refuses_when_nothing_is_idle(make: Callable[..., HTTPSServer]) -> None:
    srv = make(max_connections=2, head_timeout=30)
    busy = [connect(srv) for _ in range(2)]
    for c in busy:
        c.sendall(b"GET / HTTP/1.1\r\n")  # mid-head: not idle, cannot be evicted
    for _ in range(400):  # until the server has read both partial heads (its stats are per tick)
        if srv.stats().get("head") == 2:
            break
        time.sleep(0.025)
    assert srv.stats().get("head") == 2
    extra = connect(srv)
    assert closed(extra)
    for c in busy:
        c.sendall(b"Host: x\r\n\r\n")
        assert b"hello" in get_rest(c)


def get_rest(s: socket.socket) -> bytes:
    out = b""
    while b"hello" not in out:
        data = s.recv(4096)
        if not data:
            break
        out += data
    return out


def test_idle_connections_are_reaped(make: Callable[..., HTTPSServer]) -> None:
    srv = make(idle_timeout=0.3)
    c = connect(srv)
    assert b"200 OK" in get(c)
    assert closed(c)  # within the 10 s socket timeout, not never
    assert srv.stats()["connections"] <= 1


def test_pipelined_requests_and_server_errors_get_the_default_headers(make: Callable[..., HTTPSServer]) -> None:
    srv = make()
    c = connect(srv)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    out = b""
    while out.count(b"hello") < 2:
        out += c.recv(4096)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.count(b"X-Content-Type-Options: nosniff") == 2
    c.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
    out = b""
    while True:
        data = c.recv(4096)
        if not data:
            break
        out += data
    assert out.startswith(b"HTTP/1.1 404 ") and b"HTTP/1.1 400 " in out  # router's 404, then parser's 400
    assert out.count(b"X-Content-Type-Options: nosniff") == 2 and b"Connection: close" in out
