"""The pinned client retries a node's "busy" answer (503 from a full queue, before any handler ran)
within its deadline, and gives up with the 503 when the deadline does not allow another try.
A real TLS server on 127.0.0.1 with one worker and a queue of one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from veil.crypto.sign import SigningKey, node_id
from veil.errors import RemoteError
from veil.net import client as client_mod
from veil.net.client import PeerClient, Reply
from veil.net.server import HTTPSServer, Limits, Request, Response, Router, serve
from veil.net.tls import server_context

Slow = tuple[HTTPSServer, SigningKey, threading.Event, list[str]]


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[Slow]:
    key = SigningKey.generate()
    release = threading.Event()
    calls: list[str] = []

    def hold(req: Request) -> Response:
        calls.append(req.path)
        release.wait(30)
        return Response(body=b"held", content_type="text/plain")

    def quick(req: Request) -> Response:
        calls.append(req.path)
        return Response(body=b"quick", content_type="text/plain")

    r = Router()
    r.add("GET", "/hold", hold)
    r.add("GET", "/quick", quick)
    srv = serve(("127.0.0.1", 0), r, server_context(key, tmp_path),
                limits=Limits(workers=1, workers_per_ip=1, queue=1))
    try:
        yield srv, key, release, calls
    finally:
        release.set()
        srv.shutdown()
        srv.server_close()


def _client(srv: HTTPSServer, key: SigningKey, timeout: float) -> PeerClient:
    return PeerClient("127.0.0.1", srv.server_address[1], node_id(key.public_key), timeout=timeout)


def test_a_busy_answer_is_retried_until_the_node_has_room(
        slow_server: Slow, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    srv, key, release, calls = slow_server
    results: list[bytes] = []

    def hold() -> None:
        results.append(_client(srv, key, 60).request("GET", "/hold").body)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    holders[0].start()
    _until(lambda: calls == ["/hold"])  # the one worker is held
    holders[1].start()
    _until(lambda: srv.stats()["queued"] == 1)  # and the queue of one is full

    # A deadline too short for the node to free up: every try is "busy", and the 503 comes back.
    reply = _client(srv, key, 1.5).request("GET", "/quick", check=False)
    assert reply.status == 503 and b"busy" in reply.body
    with pytest.raises(RemoteError, match="queue_full"):
        _client(srv, key, 1.5).request("GET", "/quick")

    # Room comes back while a caller retries: it gets its answer. Room is made only once that
    # caller has been turned away at least once, so the retry is what is tested.
    turned_away = threading.Event()
    real_is_busy = client_mod._is_busy

    def spy(reply: Reply) -> bool:
        busy = real_is_busy(reply)
        if busy:
            turned_away.set()
        return busy

    monkeypatch.setattr(client_mod, "_is_busy", spy)
    got: list[bytes] = []
    caller = threading.Thread(target=lambda: got.append(_client(srv, key, 60).request("GET", "/quick").body))
    caller.start()
    assert turned_away.wait(30)
    release.set()
    caller.join(60)
    for t in holders:
        t.join(60)
    assert got == [b"quick"]
    assert results == [b"held", b"held"]


def _until(cond: Callable[[], bool], seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
