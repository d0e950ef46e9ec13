"""The pieces of `veil bench abuse` that are plain computation: the client figures and the
reply reader of the hostile load (over a real socket pair)."""

from __future__ import annotations

import socket
from collections import Counter

import pytest

from veil.bench.abuse import ClientRun
from veil.bench.hostile import Tally, outcome_of, read_reply


def test_client_run_halves_add_up() -> None:
    a = ClientRun(4_000_000, 1, 1.0, [0.001, 0.003], Counter({"NodeUnreachable": 1}), 0.5)
    b = ClientRun(2_000_000, 1, 1.0, [0.002], Counter({"NodeUnreachable": 2}), 0.25)
    r = (a + b).report()
    assert r["mb_s"] == 3.0 and r["range_reads"] == 2 and r["small_reads"] == 3
    assert r["small_p50_ms"] == 2.0 and r["small_p99_ms"] == 3.0 and r["small_max_ms"] == 3.0
    assert r["range_max_ms"] == 500.0 and r["errors"] == {"NodeUnreachable": 3}
    empty = ClientRun().report()
    assert empty["mb_s"] == 0.0 and empty["small_p50_ms"] is None


def test_read_reply_reads_pipelined_replies_and_the_close_flag() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\nRetry-After: 1\r\n\r\nabc"
                      b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nConnection: close\r\n\r\n")
        buf = bytearray()
        assert read_reply(left, buf) == (503, b"abc", False)
        assert read_reply(left, buf) == (400, b"", True)
        right.close()
        with pytest.raises(EOFError):
            read_reply(left, buf)


def test_outcomes_and_tally() -> None:
    assert outcome_of(TimeoutError()) == "timeout"
    assert outcome_of(ConnectionResetError()) == "reset"
    assert outcome_of(EOFError()) == "closed"
    t = Tally()
    t.add("two_host", "400")
    t.add("two_host", "400")
    assert t.snapshot()["two_host"] == {"400": 2} and t.snapshot()["garbage_tls"] == {}
