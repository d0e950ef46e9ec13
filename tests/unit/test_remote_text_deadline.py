"""Remote text is made safe before it is shown; a whole exchange has one deadline."""

from __future__ import annotations

import socket
import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from veil.errors import RemoteError
from veil.format import cbor
from veil.format.remote_text import clean
from veil.net.client import raise_for_reply
from veil.net.deadline import Watchdog


def test_escape_sequences_and_controls_are_removed() -> None:
    evil = "disk \x1b[31mfull\x1b[0m\x1b]0;pwned\x07 \x9b2J now\r\nsecond\u202eline\x00"
    assert clean(evil) == "disk full  now  secondline"
    assert clean("share   0 on n1: ok") == "share   0 on n1: ok"
    assert len(clean("x" * 10_000)) == 500


@given(st.text())
def test_clean_never_leaves_a_control_character(s: str) -> None:
    out = clean(s, 10_000)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out)
    assert "\x1b" not in out


def test_node_error_text_is_sanitised_at_the_boundary() -> None:
    body = cbor.encode({"error": "x\x1b[2J", "message": "\x1b]0;owned\x07bad \x1b[5mthing"})
    try:
        raise_for_reply(500, body, "node a")
    except RemoteError as e:
        assert "\x1b" not in str(e) and "bad thing" in str(e)
    else:
        raise AssertionError("no error raised")


def test_watchdog_ends_a_read_that_a_peer_keeps_alive() -> None:
    """A peer that sends one byte at a time never trips a per-read timeout; the deadline ends it."""
    a, b = socket.socketpair()
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                b.send(b"x")
            except OSError:
                return
            stop.wait(0.05)

    threading.Thread(target=drip, daemon=True).start()
    a.settimeout(5)  # per read: never reached, a byte comes every 50 ms
    wd = Watchdog()
    w = wd.watch(time.monotonic() + 0.3)
    wd.arm(w, a.fileno())
    got = 0
    try:
        while True:
            chunk = a.recv(1)
            if not chunk:
                break
            got += 1
    except OSError:
        pass
    wd.release(w)
    stop.set()
    assert w.fired and got >= 1
    a.close()
    b.close()
