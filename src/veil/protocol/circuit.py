"""Onion circuits (docs/specs/circuits.md): the client's circuit state machine and the extend wire.

No I/O here. ``net/circuit.py`` drives a ``CircuitMachine`` while it telescopes a circuit one
hop at a time; the relay role (node/relay_role.py) parses the same extend requests.

A circuit is nested TLS 1.3: TLS to relay 1 (pinned to its node id), an extend request asking
relay 1 to open a TCP connection to relay 2, TLS to relay 2 inside that tunnel, and so on; the
last relay (the exit) is asked to extend to the storage node, and the data path's own pinned
TLS runs inside. Each relay sees its predecessor and its successor, nothing else.

Extend wire (inside the TLS session with a relay, before any tunnelled byte):

    CONNECT <host>:<port> HTTP/1.1\r\nHost: <host>:<port>\r\nVeil-Node: <64 hex>\r\n\r\n
    -> HTTP/1.1 200 Connected\r\n\r\n                 then raw bytes both ways
    -> HTTP/1.1 <4xx|5xx> <reason>\r\n\r\n          then the relay closes

Both heads are at most ``MAX_EXTEND_HEAD`` bytes. The node id is the successor's; the relay
extends only to an address it knows under that id (a listed Veil node or relay), never to
itself, so a relay is not an open proxy. ``Veil-Node`` may be left out only to reach a DHT
bootstrap address whose id the client does not know yet (it learns it from that node's TLS,
as a direct bootstrap does); the address must still be one the relay knows.

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from veil.errors import IntegrityError, UnavailableError, UsageError
from veil.format.remote_text import clean

MAX_EXTEND_HEAD = 1024
MIN_HOPS, MAX_HOPS, DEFAULT_HOPS = 1, 5, 3


class CircuitError(UnavailableError):
    """A circuit could not be built or broke; ``blame`` names the relay at fault when known."""

    def __init__(self, message: str, blame: bytes | None = None) -> None:
        super().__init__(message)
        self.blame = blame


class TooFewRelays(CircuitError):
    """Fewer relays are known than the circuit needs."""


class CircState(Enum):
    NEW = "new"  # nothing sent yet
    DIALING = "dialing"  # TCP to the first relay
    HANDSHAKING = "handshaking"  # TLS with relay ``hop`` (through the tunnel of the ones before)
    EXTENDING = "extending"  # asked relay ``hop`` to open the next hop; waiting for its answer
    READY = "ready"  # the exit opened the tunnel to the target: the stream may start
    CLOSED = "closed"  # torn down by us after use
    FAILED = "failed"  # a hop refused, stalled, broke or was not the relay pinned


class CircEvent(Enum):
    DIAL = "dial"
    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"  # TLS done and the peer proved the pinned node id
    EXTENDED = "extended"  # 200 from the relay
    REFUSED = "refused"  # a non-200 answer
    TIMEOUT = "timeout"
    BROKEN = "broken"  # connection reset/closed or a TLS failure
    WRONG_PEER = "wrong_peer"  # TLS done but the key is not the pinned one
    CLOSE = "close"


_FAIL = (CircEvent.REFUSED, CircEvent.TIMEOUT, CircEvent.BROKEN, CircEvent.WRONG_PEER)
S, E = CircState, CircEvent
# (state, event) -> next state. AUTHENTICATED leads to EXTENDING (the machine's ``step`` moves
# on to the next hop after EXTENDED); EXTENDED from the exit leads to READY.
TABLE: dict[tuple[CircState, CircEvent], CircState] = {
    (S.NEW, E.DIAL): S.DIALING,
    (S.DIALING, E.CONNECTED): S.HANDSHAKING,
    (S.HANDSHAKING, E.AUTHENTICATED): S.EXTENDING,
    (S.EXTENDING, E.EXTENDED): S.HANDSHAKING,  # or READY after the exit: see CircuitMachine.step
    (S.READY, E.CLOSE): S.CLOSED,
    (S.READY, E.BROKEN): S.FAILED,
    **{(s, e): S.FAILED for s in (S.DIALING, S.HANDSHAKING, S.EXTENDING) for e in _FAIL},
    **{(s, E.CLOSE): S.CLOSED for s in (S.NEW, S.DIALING, S.HANDSHAKING, S.EXTENDING)},
}


@dataclass(frozen=True)
class Hop:
    """A relay of a path: where its relay listener is and the node id it must prove."""

    host: str
    port: int
    node_id: bytes
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"relay {self.host}:{self.port} ({self.node_id.hex()[:8]})"


@dataclass
class CircuitMachine:
    """One circuit's progress through ``path`` (entry first, exit last) to ``target``."""

    path: list[Hop]
    target: Hop
    state: CircState = CircState.NEW
    hop: int = 0  # the relay being dialled, authenticated or extended through
    blame: bytes | None = None  # node id of the relay a failure is put on (None: unknown)
    reason: str = ""
    started: float = field(default_factory=time.monotonic)
    ready_after: float | None = None  # seconds from DIAL to READY

    def step(self, event: CircEvent, detail: str = "") -> CircState:
        nxt = TABLE.get((self.state, event))
        if nxt is None:
            raise IntegrityError(f"circuit: {event.value} is not possible while {self.state.value}")
        if nxt is CircState.FAILED:
            # Every failure before READY happened at hop ``self.hop``: the relay dialled, being
            # authenticated, or asked to extend (a refusal is that relay's answer; a timeout while
            # extending is that relay or its successor stalling, and the relay is the one we can name).
            if self.state is not CircState.READY:
                self.blame = self.path[self.hop].node_id
            self.reason = clean(detail or event.value)
        elif event is CircEvent.EXTENDED:
            if self.hop == len(self.path) - 1:
                nxt = CircState.READY
                self.ready_after = time.monotonic() - self.started
            else:
                self.hop += 1
        self.state = nxt
        return nxt

    @property
    def next_target(self) -> Hop:
        """Where the relay at ``hop`` is asked to extend to."""
        return self.path[self.hop + 1] if self.hop + 1 < len(self.path) else self.target

    def refused(self, status: int, reason: str) -> CircState:
        """The relay at ``hop`` answered the extend request with ``status``. A 502 means it could
        not reach its successor: that successor is blamed if it is a relay, nobody if it is the
        target node (a node that is down is the data path's business, not a relay's fault)."""
        here, nxt = self.path[self.hop], self.next_target
        st = self.step(CircEvent.REFUSED, f"{here.label} refused to extend to {nxt.label}: {status} {reason}")
        if status == 502:
            self.blame = nxt.node_id if self.hop + 1 < len(self.path) else None
        return st

    def authenticated(self, proven: bytes) -> CircState:
        """TLS with the current hop is done and the peer proved ``proven``: it must be the pin."""
        if proven != self.path[self.hop].node_id:
            return self.step(CircEvent.WRONG_PEER, f"{self.path[self.hop].label} is not the relay expected")
        return self.step(CircEvent.AUTHENTICATED)


# -- extend wire ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Extend:
    host: str
    port: int
    node_id: bytes | None  # None: any id the relay knows at that address (DHT bootstrap only)


def encode_extend(host: str, port: int, node_id: bytes) -> bytes:
    """``node_id`` b"": unknown (a bootstrap address); the header is left out."""
    hp = f"{host}:{port}"
    pin = f"Veil-Node: {node_id.hex()}\r\n" if node_id else ""
    return f"CONNECT {hp} HTTP/1.1\r\nHost: {hp}\r\n{pin}\r\n".encode("ascii")


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or len(port) > 5 or not 0 < int(port) < 65536:
        raise ValueError("bad host:port")
    if not all(c.isalnum() or c in ".-" for c in host) or len(host) > 253:
        raise ValueError("bad host")
    return host, int(port)


def parse_extend(head: bytes) -> Extend:
    """The relay's side: a complete head (ending in CRLF CRLF) -> Extend; ValueError if malformed."""
    if len(head) > MAX_EXTEND_HEAD or not head.endswith(b"\r\n\r\n"):
        raise ValueError("extend request too long or unterminated")
    lines = head[:-4].decode("ascii").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[0] != "CONNECT" or parts[2] != "HTTP/1.1":
        raise ValueError("not an extend request")
    host, port = _hostport(parts[1])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if not sep or not key or key in fields:
            raise ValueError("malformed or repeated header field")
        fields[key] = value.strip()
    if fields.get("host") != parts[1]:
        raise ValueError("Host does not match the CONNECT target")
    if set(fields) - {"host", "veil-node"}:
        raise ValueError("unknown header field in extend request")
    nid = fields.get("veil-node")
    if nid is None:
        return Extend(host, port, None)
    if len(nid) != 64 or any(c not in "0123456789abcdef" for c in nid):
        raise ValueError("Veil-Node must be the successor's node id in hex")
    return Extend(host, port, bytes.fromhex(nid))


def encode_reply(status: int, reason: str) -> bytes:
    text = clean(reason, 200).replace("\r", " ").replace("\n", " ")
    return f"HTTP/1.1 {status} {text}\r\n\r\n".encode("ascii", "replace")


def parse_reply(head: bytes) -> tuple[int, str]:
    """The client's side: (status, reason) of a relay's answer head."""
    if len(head) > MAX_EXTEND_HEAD or not head.endswith(b"\r\n\r\n"):
        raise ValueError("relay answer too long or unterminated")
    line = head[:-4].split(b"\r\n")[0].decode("ascii", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ValueError("malformed relay answer")
    return int(parts[1]), clean(parts[2] if len(parts) > 2 else "", 200)


def head_end(buf: bytes | bytearray) -> int:
    """Index just past CRLF CRLF in ``buf``, or -1 (and ValueError once it cannot fit the bound)."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        if len(buf) >= MAX_EXTEND_HEAD:
            raise ValueError("head over the size bound")
        return -1
    return i + 4


def check_hops(hops: int) -> int:
    if not MIN_HOPS <= hops <= MAX_HOPS:
        raise UsageError(f"--hops must be between {MIN_HOPS} and {MAX_HOPS}, not {hops}")
    return hops
