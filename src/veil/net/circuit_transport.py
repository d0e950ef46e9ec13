"""``StorageTransport`` over onion circuits: every storage-node connection is its own circuit.

The requests, paths and bodies are TlsTransport's (net/storage_transport.py); only how a
connection reaches its node differs: ``PeerClient`` dials through ``open_circuit`` (a circuit
built by net/circuit.py) and runs its pinned TLS with the node inside. So the node sees an exit
relay's address, and each relay sees only its neighbours.

Choices (docs/specs/circuits.md): one transport per command, so a new set of circuits per file;
each connection (the client pools up to 16 per node) is one circuit carrying one stream; the exit
for a node is kept for that node's later circuits, and new nodes get the least-used exit, so the
share streams of one download leave through different exits while relays last
(protocol/circuit_path.py). A build that fails is retried (``MAX_BUILDS`` in all) through other
relays, and the relay it failed at is named in ``warnings`` and avoided. When a request over a
circuit fails as unavailable, the relays of that node's circuits are probed (a pinned TLS
handshake within ``PROBE_TIMEOUT``); a relay that does not answer is named and avoided. The
data path meanwhile does what it does for any slow or lost node: it hedges to other shares.

Imports from: veil.errors, veil.protocol, veil.net.
"""

from __future__ import annotations

import collections
import random
import socket
import threading
import time
from typing import Any

from veil.errors import UnavailableError
from veil.protocol.circuit import DEFAULT_HOPS, CircuitError, Hop, TooFewRelays
from veil.protocol.circuit_path import choose_path
from veil.protocol.nodeinfo import NodeInfo

from .circuit import BUILD_TIMEOUT, Circuit, build_circuit, probe
from .client import Dial, PeerClient, Reply
from .storage_transport import MAX_IN_FLIGHT, TlsTransport

MAX_BUILDS = 3
PROBE_TIMEOUT = 3.0
PROBE_AGAIN = 10.0  # seconds before a relay that answered a probe is probed again
RECENT = 5.0  # a circuit that went down this long before a failed request may be the one it used


def _shutdown(sock: socket.socket | None) -> None:
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _integrity_failure(error: str) -> bool:
    return "BAD_RECORD_MAC" in error or "DECRYPTION_FAILED" in error


class _CircuitPeer(PeerClient):
    """A PeerClient whose failures as unavailable make the transport check the relays; a read
    (GET) that failed because of a relay is sent once more, through a new circuit."""

    transport: CircuitTransport
    node: NodeInfo

    def request(self, method: str, *args: Any, **kwargs: Any) -> Reply:
        try:
            return super().request(method, *args, **kwargs)
        except UnavailableError as e:
            if isinstance(e, TooFewRelays) or not self.transport.suspect(self.node, str(e)) or method != "GET":
                raise
        return super().request(method, *args, **kwargs)


class CircuitTransport(TlsTransport):
    def __init__(self, relays: list[Hop], hops: int = DEFAULT_HOPS, *, build_timeout: float = BUILD_TIMEOUT,
                 source: str | None = None, read_timeout: float = 30.0, max_in_flight: int = MAX_IN_FLIGHT,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        super().__init__(read_timeout, max_in_flight)
        self.relays = list(relays)
        self.hops = hops
        self.build_timeout = build_timeout
        self.source = source  # local address the first hop leaves from (None: the kernel's choice)
        self.rng = rng or random.SystemRandom()
        self.warnings: list[str] = []
        self.circuits: list[Circuit] = []
        self.build_times: list[float] = []  # the last 1,000
        self.built = 0
        self.avoid: set[bytes] = set()
        self._why: dict[bytes, str] = {}  # why each avoided relay is avoided
        self._exit_use: collections.Counter[bytes] = collections.Counter()
        self._exit_of: dict[bytes, bytes] = {}
        self._probed: dict[bytes, float] = {}
        self._probing: dict[bytes, threading.Event] = {}
        self._mu = threading.Lock()

    def check_relays(self) -> None:
        """TooFewRelays now, rather than at the first request, when a circuit cannot be had."""
        choose_path(self.relays, b"", self.hops, {}, self.avoid, self.rng)

    def new_client(self, node: NodeInfo) -> PeerClient:
        c = _CircuitPeer(node.host, node.port, node.node_id, self.read_timeout,
                         dial=lambda _addr, _timeout, _src: self.open_circuit(node))  # fmt: skip
        c.transport, c.node = self, node
        return c

    def dial_for(self, host: str, port: int, node_id: bytes | None) -> Dial:
        """How a DHT client reaches a contact over a circuit (node id None: a bootstrap address)."""
        node = NodeInfo(host, port, node_id or b"", roles=("dht",))
        return lambda _addr, _timeout, _src: self.open_circuit(node)

    def _path(self, node: NodeInfo) -> list[Hop]:
        with self._mu:
            try:
                path = choose_path(self.relays, node.node_id, self.hops, self._exit_use, self.avoid, self.rng,
                                   prefer_exit=self._exit_of.get(node.node_id))  # fmt: skip
            except TooFewRelays as e:
                if not self._why:
                    raise
                raise TooFewRelays(f"{e}: {'; '.join(list(self._why.values())[:3])}") from None
            if self._exit_of.get(node.node_id) != path[-1].node_id:
                self._exit_of[node.node_id] = path[-1].node_id
                self._exit_use[path[-1].node_id] += 1
            return path

    def open_circuit(self, node: NodeInfo) -> socket.socket:
        """Build a circuit to ``node`` and return the socket its TLS runs over."""
        target = Hop(node.host, node.port, node.node_id, node.label)
        last: CircuitError | None = None
        for _ in range(MAX_BUILDS):
            path = self._path(node)
            try:
                circ = build_circuit(path, target, self.build_timeout, self.source, on_broken=self._broken)
            except CircuitError as e:
                last = e
                self._blame(e.blame, str(e))
                continue
            assert circ.sock is not None and circ.machine.ready_after is not None
            with self._mu:
                now = time.monotonic()  # forget circuits long gone (a gateway builds them for ever)
                self.circuits = [c for c in self.circuits if c.ended_at is None or now - c.ended_at < RECENT]
                self.circuits.append(circ)
                self.build_times = [*self.build_times[-999:], circ.machine.ready_after]
                self.built += 1
            return circ.sock
        assert last is not None
        raise CircuitError(f"no circuit to {node.label} after {MAX_BUILDS} tries: {last}", last.blame)

    def _blame(self, nid: bytes | None, why: str) -> None:
        with self._mu:
            if nid is None or nid in self.avoid:
                return
            self.avoid.add(nid)
            self._why[nid] = why
            if nid in self._exit_use:
                self._exit_use[nid] = 1 << 30  # never again the least-used exit
            self.warnings.append(f"{why}; circuits are rebuilt through other relays")
            doomed = [c for c in self.circuits if c.sock is not None and any(h.node_id == nid for h in c.relays)]
        for c in doomed:  # pooled connections through it fail at once and are redialled through others
            _shutdown(c.sock)

    def suspect(self, node: NodeInfo, error: str = "") -> bool:
        """A request to ``node`` failed: name a relay that altered bytes (a layer's TLS failed its
        integrity check), else probe the relays of its circuits and name the dead ones. True if a
        relay of the node's circuits is (now) avoided: the failure was a relay's, not the node's."""
        now = time.monotonic()
        with self._mu:
            dead = [c for c in self.circuits if c.machine.target.node_id == node.node_id and c.ended_at is not None
                    and now - c.ended_at < RECENT]  # fmt: skip
        for c in dead:
            culprit = c.tamperer()
            if culprit is None and _integrity_failure(error) and c is max(dead, key=lambda d: d.ended_at or 0):
                culprit = c.relays[-1].node_id  # the node's own TLS failed: only the exit carries it in the clear
            if culprit is not None:
                label = next(h.label for h in c.relays if h.node_id == culprit)
                self._blame(culprit, f"{label} altered bytes in transit (caught by the inner TLS)")
        with self._mu:
            hops = [h for c in self.circuits if c.machine.target.node_id == node.node_id for h in c.relays]
        self._probe(hops)
        with self._mu:
            return any(h.node_id in self.avoid for h in hops)

    def _broken(self, circ: Circuit) -> None:
        """A circuit was ended from the relays' side: check that its relays still answer."""
        self._probe(circ.relays)

    def _probe(self, relays: list[Hop]) -> None:
        """Probe each relay not avoided and not probed lately; wait for probes other threads run."""
        now = time.monotonic()
        todo: dict[bytes, tuple[Hop, threading.Event]] = {}
        waits: list[threading.Event] = []
        with self._mu:
            for h in relays:
                if h.node_id in self.avoid or h.node_id in todo:
                    continue
                running = self._probing.get(h.node_id)
                if running is not None and not running.is_set():
                    waits.append(running)
                elif now - self._probed.get(h.node_id, -PROBE_AGAIN) >= PROBE_AGAIN:
                    self._probed[h.node_id] = now
                    todo[h.node_id] = (h, threading.Event())
                    self._probing[h.node_id] = todo[h.node_id][1]

        def run(h: Hop, done: threading.Event) -> None:
            try:
                why = probe(h, PROBE_TIMEOUT)
                if why is not None:
                    self._blame(h.node_id, f"{h.label} {why}")
            finally:
                done.set()

        threads = [threading.Thread(target=run, args=hd, daemon=True) for hd in todo.values()]
        for t in threads:
            t.start()
        for ev in [d for _, d in todo.values()] + waits:
            ev.wait(PROBE_TIMEOUT + 2)

    def stats(self) -> dict[str, Any]:
        with self._mu:
            return {"circuits": self.built, "build_times": list(self.build_times),
                    "exits": len(set(self._exit_of.values())), "avoided": len(self.avoid)}  # fmt: skip
