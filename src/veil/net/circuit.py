"""Building one onion circuit, client side: nested TLS 1.3 through extend requests.

``build_circuit(path, target)`` telescopes: TCP + TLS to relay 1 (pinned), an extend request
for relay 2, then TLS to relay 2 over that tunnel, and so on; the exit is asked to extend to
the target node. Each inner TLS session runs on one end of a ``socketpair`` whose other end a
splice thread (net/splice.py) pumps into the TLS session of the hop before. What comes back is
the innermost socket-pair end: the caller runs its own pinned TLS with the target over it
(net/client.py), so the exit relays only ciphertext it cannot read or alter unnoticed.

The ``CircuitMachine`` of protocol/circuit.py keeps the state and names the relay a failure
is put on. The whole build has one deadline; a relay that does not answer within it is the
one blamed. Tearing down: closing the returned socket ends the innermost splice, which closes
the hop before, and so on outwards.

Imports from: veil.errors, veil.format, veil.protocol, veil.net.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from veil.errors import IntegrityError
from veil.format.remote_text import clean
from veil.net import trace
from veil.net.splice import SpliceEnd, splice
from veil.net.tls import client_context, peer_node_id
from veil.protocol.circuit import (
    CircEvent,
    CircState,
    CircuitError,
    CircuitMachine,
    Hop,
    encode_extend,
    head_end,
    parse_reply,
)

BUILD_TIMEOUT = 5.0  # seconds for the whole telescoping (under the 10 s of a control request)
IDLE = 300.0  # a splice with no byte either way for this long ends (the pool drops the circuit)
LIFETIME = 3600.0


@dataclass
class Circuit:
    """A built circuit: its hops, its machine, the splice threads and what they report."""

    machine: CircuitMachine
    ends: list[tuple[int, SpliceEnd]] = field(default_factory=list)  # (layer: relay index, how it ended)
    ended_at: float | None = None  # when the first splice ended (the circuit is then going down)
    moved: int = 0  # bytes through the entry relay so far, both ways
    threads: list[threading.Thread] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    sock: socket.socket | None = None  # the innermost end, for the target's TLS

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    @property
    def relays(self) -> list[Hop]:
        return self.machine.path

    def tamperer(self) -> bytes | None:
        """The relay that altered bytes, when a layer's TLS failed its integrity check: the TLS
        with relay i is carried by relay i-1 (relay 0's by the network, so nobody is named)."""
        for i, end in self.ends:
            if end.why == "tls" and end.side == "a" and i >= 1:
                return self.machine.path[i - 1].node_id
        return None


def _wrap(raw: socket.socket, timeout: float) -> ssl.SSLSocket:
    raw.settimeout(timeout)
    s = client_context().wrap_socket(raw, suppress_ragged_eofs=False, do_handshake_on_connect=False)
    s.do_handshake()
    return s


def _read_head(s: ssl.SSLSocket) -> bytes:
    # Nothing follows the relay's answer until we send the next hop's ClientHello, so a read
    # can never take tunnelled bytes with the head.
    buf = bytearray()
    while True:
        data = s.recv(512)
        if not data:
            raise ConnectionError("relay closed before answering")
        buf += data
        n = head_end(buf)
        if n >= 0:
            if n != len(buf):
                raise IntegrityError("relay sent bytes after its answer")
            return bytes(buf)


def _pump(circ: Circuit, layer: int, a: socket.socket, b: socket.socket,
          on_broken: Callable[[Circuit], None] | None) -> None:  # fmt: skip
    def ended(end: SpliceEnd) -> None:
        circ.ends.append((layer, end))
        first = circ.ended_at is None
        if first:
            circ.ended_at = time.monotonic()
        if first and end.side == "a" and on_broken is not None:
            # The relay side went first (not our own close of the innermost socket): a relay, or
            # the node, ended the circuit. Let the owner find out which, off this thread.
            threading.Thread(target=on_broken, args=(circ,), name="circuit-broken", daemon=True).start()

    def count(n: int) -> None:
        circ.moved += n

    def run() -> None:
        splice(a, b, idle=IDLE, lifetime=LIFETIME, on_end=ended, on_bytes=count if layer == 0 else None)

    t = threading.Thread(target=run, name="circuit-splice", daemon=True)
    circ.threads.append(t)
    t.start()


def build_circuit(path: list[Hop], target: Hop, timeout: float = BUILD_TIMEOUT,
                  source: str | None = None, connect: Callable[..., socket.socket] = socket.create_connection,
                  on_broken: Callable[[Circuit], None] | None = None) -> Circuit:  # fmt: skip
    """Telescope a circuit through ``path`` to ``target``; CircuitError (with ``blame``) on failure.

    ``on_broken(circuit)`` is called (in a thread of its own) if the circuit is later ended from
    the relays' side rather than by closing the returned socket."""
    m = CircuitMachine(list(path), target)
    circ = Circuit(m)
    deadline = time.monotonic() + timeout
    layer: ssl.SSLSocket | None = None
    opened: list[socket.socket] = []

    def left() -> float:
        r = deadline - time.monotonic()
        if r <= 0:
            raise TimeoutError("circuit build deadline passed")
        return r

    try:
        m.step(CircEvent.DIAL)
        first = path[0]
        raw = connect((first.host, first.port), left(), (source, 0) if source else None)
        opened.append(raw)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        trace.record("client", raw.getsockname(), f"{first.host}:{first.port}")
        m.step(CircEvent.CONNECTED)
        layer = _wrap(raw, left())
        opened.append(layer)
        while True:
            if m.authenticated(peer_node_id(layer)) is CircState.FAILED:
                raise CircuitError(m.reason, m.blame)
            nxt = m.next_target
            layer.settimeout(left())
            layer.sendall(encode_extend(nxt.host, nxt.port, nxt.node_id))
            status, reason = parse_reply(_read_head(layer))
            if status != 200:
                m.refused(status, reason)
                raise CircuitError(m.reason, m.blame)
            inner, outer = socket.socketpair()
            opened += [inner, outer]
            layer.settimeout(None)
            _pump(circ, m.hop, layer, inner, on_broken)  # the splice owns (and closes) layer and inner from here
            opened = [s for s in opened if s is not layer and s is not inner]
            if m.step(CircEvent.EXTENDED) is CircState.READY:
                circ.sock = outer
                return circ
            layer = _wrap(outer, left())
            opened = [s for s in opened if s is not outer] + [layer]
    except CircuitError:
        _close_all(opened)
        raise
    except TimeoutError as e:
        _fail(m, CircEvent.TIMEOUT, f"{path[m.hop].label} did not answer within {timeout:g} s")
        _close_all(opened)
        raise CircuitError(m.reason, m.blame) from e
    except (OSError, ssl.SSLError, ValueError, IntegrityError) as e:
        _fail(m, CircEvent.BROKEN, f"{path[m.hop].label}: {e.__class__.__name__}: {clean(e)}")
        _close_all(opened)
        raise CircuitError(m.reason, m.blame) from e


def _fail(m: CircuitMachine, event: CircEvent, detail: str) -> None:
    if m.state not in (CircState.FAILED, CircState.CLOSED, CircState.READY):
        m.step(event, detail)


def _close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def probe(hop: Hop, timeout: float = 3.0) -> str | None:
    """A TLS handshake with a relay: None if it completed and proved the pinned id, else why not."""
    try:
        with socket.create_connection((hop.host, hop.port), timeout) as raw:
            s = _wrap(raw, timeout)
            try:
                if peer_node_id(s) != hop.node_id:
                    return "is not the relay expected"
            finally:
                s.close()
    except TimeoutError:
        return f"did not complete a TLS handshake within {timeout:g} s"
    except (OSError, ssl.SSLError, IntegrityError) as e:
        return f"unreachable: {e.__class__.__name__}: {clean(e)}"
    return None
