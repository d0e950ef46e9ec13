"""The circuit state machine, the extend wire and path selection (protocol/circuit*.py): no I/O."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError, UsageError
from veil.protocol.circuit import (
    MAX_EXTEND_HEAD,
    TABLE,
    CircEvent,
    CircState,
    CircuitMachine,
    Hop,
    TooFewRelays,
    check_hops,
    encode_extend,
    encode_reply,
    head_end,
    parse_extend,
    parse_reply,
)
from veil.protocol.circuit_path import choose_path


def hop(i: int) -> Hop:
    return Hop("127.0.0.1", 1000 + i, bytes([i]) * 32, f"relay-{i:02d}")


TARGET = Hop("127.0.0.1", 2000, b"\xee" * 32, "node")


def built(n: int) -> CircuitMachine:
    m = CircuitMachine([hop(i) for i in range(n)], TARGET)
    m.step(CircEvent.DIAL)
    m.step(CircEvent.CONNECTED)
    return m


# -- the transition table ----------------------------------------------------------------------
def test_table_every_failure_of_a_building_state_fails_and_ready_only_closes_or_breaks() -> None:
    for s in (CircState.DIALING, CircState.HANDSHAKING, CircState.EXTENDING):
        for e in (CircEvent.REFUSED, CircEvent.TIMEOUT, CircEvent.BROKEN, CircEvent.WRONG_PEER):
            assert TABLE[(s, e)] is CircState.FAILED
    assert {e for (s, e) in TABLE if s is CircState.READY} == {CircEvent.CLOSE, CircEvent.BROKEN}
    assert not any(s in (CircState.CLOSED, CircState.FAILED) for (s, _) in TABLE)  # terminal


def test_three_hops_telescope_to_ready() -> None:
    m = built(3)
    for i in range(3):
        assert m.state is CircState.HANDSHAKING and m.hop == i
        assert m.authenticated(hop(i).node_id) is CircState.EXTENDING
        assert m.next_target == (hop(i + 1) if i < 2 else TARGET)
        m.step(CircEvent.EXTENDED)
    assert m.state is CircState.READY and m.ready_after is not None and m.blame is None
    assert m.step(CircEvent.CLOSE) is CircState.CLOSED


def test_one_hop_circuit_is_ready_after_one_extend() -> None:
    m = built(1)
    m.authenticated(hop(0).node_id)
    assert m.next_target == TARGET
    assert m.step(CircEvent.EXTENDED) is CircState.READY


def test_wrong_key_fails_and_blames_that_hop() -> None:
    m = built(3)
    m.authenticated(hop(0).node_id)
    m.step(CircEvent.EXTENDED)
    assert m.authenticated(b"\x99" * 32) is CircState.FAILED
    assert m.blame == hop(1).node_id and "not the relay expected" in m.reason


def test_timeout_while_extending_blames_the_relay_asked() -> None:
    m = built(3)
    m.authenticated(hop(0).node_id)
    m.step(CircEvent.EXTENDED)
    m.authenticated(hop(1).node_id)
    assert m.step(CircEvent.TIMEOUT, "stalled") is CircState.FAILED
    assert m.blame == hop(1).node_id and m.reason == "stalled"


def test_502_blames_the_successor_relay_but_never_for_the_target_node() -> None:
    m = built(3)
    m.authenticated(hop(0).node_id)
    m.refused(502, "cannot reach")
    assert m.state is CircState.FAILED and m.blame == hop(1).node_id
    m = built(1)
    m.authenticated(hop(0).node_id)
    m.refused(502, "cannot reach")  # the exit could not reach the storage node: not the relay's fault
    assert m.state is CircState.FAILED and m.blame is None
    m = built(2)
    m.authenticated(hop(0).node_id)
    m.refused(403, "not known")  # a refusal is the refusing relay's own answer
    assert m.blame == hop(0).node_id


def test_impossible_transitions_are_refused() -> None:
    m = CircuitMachine([hop(0)], TARGET)
    with pytest.raises(IntegrityError):
        m.step(CircEvent.EXTENDED)
    m = built(1)
    m.step(CircEvent.BROKEN)
    with pytest.raises(IntegrityError):
        m.step(CircEvent.AUTHENTICATED)  # FAILED is terminal


# -- extend wire --------------------------------------------------------------------------------
def test_extend_round_trip_with_and_without_a_node_id() -> None:
    e = parse_extend(encode_extend("127.0.0.1", 443, b"\xab" * 32))
    assert (e.host, e.port, e.node_id) == ("127.0.0.1", 443, b"\xab" * 32)
    assert parse_extend(encode_extend("node.example", 9, b"")).node_id is None


@pytest.mark.parametrize("head", [
    b"GET / HTTP/1.1\r\nHost: a:1\r\n\r\n",
    b"CONNECT a:1 HTTP/1.0\r\nHost: a:1\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: b:1\r\n\r\n",
    b"CONNECT a:0 HTTP/1.1\r\nHost: a:0\r\n\r\n",
    b"CONNECT a:70000 HTTP/1.1\r\nHost: a:70000\r\n\r\n",
    b"CONNECT a b:1 HTTP/1.1\r\nHost: a b:1\r\n\r\n",
    b"CONNECT [::1]:1 HTTP/1.1\r\nHost: [::1]:1\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nHost: a:1\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nVeil-Node: 12\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nVeil-Node: " + b"AB" * 32 + b"\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nX-Other: 1\r\n\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n",
    b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nX: " + b"x" * MAX_EXTEND_HEAD + b"\r\n\r\n",
])  # fmt: skip
def test_malformed_extend_requests_are_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_extend(head)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_an_extend_or_a_value_error(data: bytes) -> None:
    try:
        e = parse_extend(data)
    except ValueError:
        return
    assert 0 < e.port < 65536


def test_reply_round_trip_and_head_bound() -> None:
    assert parse_reply(encode_reply(200, "Connected")) == (200, "Connected")
    assert parse_reply(encode_reply(403, "no\r\nInjected: 1")) == (403, "no  Injected: 1")
    assert head_end(b"HTTP/1.1 200 x\r\n\r\n") == 18
    assert head_end(b"HTTP/1.1 200") == -1
    with pytest.raises(ValueError):
        head_end(b"x" * MAX_EXTEND_HEAD)
    with pytest.raises(ValueError):
        parse_reply(b"SMTP 220 hi\r\n\r\n")


def test_hops_bounds() -> None:
    assert check_hops(1) == 1 and check_hops(5) == 5
    for bad in (0, 6, -1):
        with pytest.raises(UsageError, match="between 1 and 5"):
            check_hops(bad)


# -- path selection -------------------------------------------------------------------------------
RELAYS = [hop(i) for i in range(6)]


def test_path_has_distinct_relays_and_never_the_target() -> None:
    rng = random.Random(1)
    as_target = RELAYS[2].node_id  # a node that is also a relay is never in its own circuit
    for hops in range(1, 6):
        p = choose_path(RELAYS, as_target, hops, {}, rng=rng)
        ids = [h.node_id for h in p]
        assert len(ids) == hops == len(set(ids)) and as_target not in ids


def test_exits_spread_over_targets_while_relays_last() -> None:
    rng = random.Random(7)
    use: dict[bytes, int] = {}
    exits = []
    for t in range(6):
        p = choose_path(RELAYS, bytes([100 + t]) * 32, 3, use, rng=rng)
        exits.append(p[-1].node_id)
        use[p[-1].node_id] = use.get(p[-1].node_id, 0) + 1
    assert len(set(exits)) == 6  # six targets, six relays: no exit sees two of them
    p = choose_path(RELAYS, b"\x01" * 32, 3, use, rng=rng, prefer_exit=exits[3])
    assert p[-1].node_id == exits[3]


def test_too_few_relays_says_how_many_it_needs_and_found() -> None:
    with pytest.raises(TooFewRelays, match="need 3 relays for a circuit, found 1"):
        choose_path(RELAYS[:1], b"\xee" * 32, 3, {})
    with pytest.raises(TooFewRelays, match=r"found 2 \(1 more left out after failing\)"):
        choose_path(RELAYS[:3], b"\xee" * 32, 3, {}, avoid={RELAYS[0].node_id})
    with pytest.raises(TooFewRelays, match="found 2"):  # the target does not count as its own relay
        choose_path(RELAYS[:3], RELAYS[1].node_id, 3, {})
