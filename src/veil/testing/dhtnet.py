"""An in-memory network of sans-I/O DHT nodes with a virtual clock: latency, drops and churn.

Messages are events on one heap ordered by virtual time; a request to a dead node, a dropped
message or an address that does not belong to the pinned id ends in a timeout
``rpc_timeout`` after sending, as it would over TLS. With ``wire=True`` every message goes
through its canonical CBOR encoding and the strict decoder on the way, as on the real network.
The default config accepts any id (``id_bits=0``); with a puzzle, ``new_key`` grinds for it.
Nodes may be given a ``behaviour`` that replaces their honest answers (for attack tests).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from veil.crypto.idpuzzle import valid_id
from veil.crypto.sign import SigningKey, node_id
from veil.dht.ids import Contact
from veil.dht.messages import (
    FindNode,
    FindProviders,
    FindValue,
    Nodes,
    Ping,
    Pong,
    Providers,
    Request,
    Response,
    Stored,
    Value,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from veil.dht.node import DhtConfig, DhtNode, OpDone, Send
from veil.testing.clock import ManualClock

Behaviour = Callable[[DhtNode, Request, float, str], Response]
# Answers for a contact that is no live node (ground "ghost" ids of an attacker); None: a timeout.
GhostAnswer = Callable[[Contact, Request, float], Response | None]
Listener = Callable[[DhtNode, OpDone], None]


class DhtNetwork:
    def __init__(
        self,
        *,
        seed: int = 0,
        latency: tuple[float, float] = (0.01, 0.1),
        drop_rate: float = 0.0,
        rpc_timeout: float = 1.0,
        wire: bool = False,
        config: DhtConfig | None = None,
        clock: ManualClock | None = None,
    ) -> None:
        if not 0 <= latency[0] <= latency[1] < rpc_timeout / 2:
            raise ValueError("latency must be below half the RPC timeout")
        self.rng = random.Random(seed)
        self.clock = clock or ManualClock()
        self.latency = latency
        self.drop_rate = drop_rate
        self.rpc_timeout = rpc_timeout
        self.wire = wire
        self.config = config or DhtConfig(id_bits=0)
        self.nodes: dict[int, DhtNode] = {}
        self.behaviours: dict[int, Behaviour] = {}
        self.ghosts: GhostAnswer | None = None
        self.listeners: list[Listener] = []
        self.messages = 0
        self.timeouts = 0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._serial = 0

    # -- membership ----------------------------------------------------------------------

    def new_key(self) -> SigningKey:
        """A key from the network's seed whose id solves ``config.id_bits`` (keep it small here)."""
        while True:
            key = SigningKey(self.rng.randbytes(32))
            if valid_id(node_id(key.public_key), self.config.id_bits):
                return key

    def add_node(self, key: SigningKey | None = None, behaviour: Behaviour | None = None) -> DhtNode:
        self._serial += 1
        node = DhtNode(
            key or self.new_key(),
            f"sim-{self._serial}:1",
            self.config,
            now=self.clock.now(),
            rng=random.Random(self.rng.getrandbits(64)),
        )
        self.nodes[node.contact.key] = node
        if behaviour is not None:
            self.behaviours[node.contact.key] = behaviour
        return node

    def kill(self, node: DhtNode) -> None:
        """The node vanishes without a word, as a crashed machine does."""
        self.nodes.pop(node.contact.key, None)
        self.behaviours.pop(node.contact.key, None)

    def alive(self, node: DhtNode) -> bool:
        return self.nodes.get(node.contact.key) is node

    # -- driving nodes ---------------------------------------------------------------------

    def act(self, node: DhtNode, fn: Callable[[DhtNode, float], Any]) -> Any:
        """Call ``fn(node, now)`` (start a lookup, tick, ...) and send what it produced."""
        result = fn(node, self.clock.now())
        self._flush(node)
        return result

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, fn, args))

    def run(self, until: float | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Process events in time order until the queue is empty, ``until`` is reached or ``stop()``."""
        q = self._queue
        clock = self.clock
        while q:
            if until is not None and q[0][0] > until:
                clock.set(until)
                return
            when, _, fn, args = heapq.heappop(q)
            if when > clock.now():
                clock.set(when)
            fn(*args)
            if stop is not None and stop():
                return
        if until is not None and until > clock.now():
            clock.set(until)

    @property
    def idle(self) -> bool:
        return not self._queue

    # -- message passing ---------------------------------------------------------------

    def _flush(self, node: DhtNode) -> None:
        out = node.take_outgoing()
        if out:
            now = self.clock.now()
            rng = self.rng
            lo, hi = self.latency
            for send in out:
                self.messages += 1
                if self.drop_rate and rng.random() < self.drop_rate:
                    self.at(now + self.rpc_timeout, self._timeout, node, send)
                else:
                    self.at(now + rng.uniform(lo, hi), self._deliver, node, send, now)
        events = node.take_events()
        if events:
            for ev in events:
                for listener in self.listeners:
                    listener(node, ev)

    def _timeout(self, node: DhtNode, send: Send) -> None:
        if self.nodes.get(node.contact.key) is node:
            self.timeouts += 1
            node.on_timeout(send.request_id, self.clock.now())
            self._flush(node)

    def _deliver(self, src: DhtNode, send: Send, sent_at: float) -> None:
        to = send.to
        dest = self.nodes.get(to.key)
        now = self.clock.now()
        msg = send.message
        if self.wire:
            msg = decode_request(encode_request(msg))
        if dest is None or dest.contact.address != to.address:
            ghost = self.ghosts(to, msg, now) if self.ghosts is not None and dest is None else None
            if ghost is None:
                self.at(sent_at + self.rpc_timeout, self._timeout, src, send)
                return
            resp: Response = ghost
        else:
            behaviour = self.behaviours.get(to.key)
            peer = src.contact.address
            resp = behaviour(dest, msg, now, peer) if behaviour is not None else dest.handle(msg, now, peer)
            self._flush(dest)
        if self.wire:
            resp = decode_response(encode_response(resp))
        if self.drop_rate and self.rng.random() < self.drop_rate:
            self.at(sent_at + self.rpc_timeout, self._timeout, src, send)
            return
        lo, hi = self.latency
        self.at(now + self.rng.uniform(lo, hi), self._reply, src, send, resp)

    def _reply(self, src: DhtNode, send: Send, resp: Response) -> None:
        if self.nodes.get(src.contact.key) is src:
            src.on_reply(send.request_id, resp, self.clock.now())
            self._flush(src)


def colluding(colluders: list[Contact], k: int = 20) -> Behaviour:
    """A liar: answers every lookup with the ``k`` colluders nearest the target and no records,
    and swallows records sent to it (claims to store them)."""

    def behave(node: DhtNode, msg: Request, now: float, peer: str) -> Response:
        if isinstance(msg, Ping):
            return Pong()
        if isinstance(msg, FindNode | FindValue | FindProviders):
            target = msg.target if isinstance(msg, FindNode) else msg.key
            t = int.from_bytes(target, "big")
            return _nothing_but(msg, tuple(sorted((c for c in colluders if c.key != node.contact.key),
                                                  key=lambda c: c.key ^ t)[:k]))  # fmt: skip
        return Stored(True)

    return behave


def _nothing_but(msg: FindNode | FindValue | FindProviders, near: tuple[Contact, ...]) -> Response:
    """A liar's answer to a lookup step: the contacts ``near`` and never a value or provider."""
    if isinstance(msg, FindNode):
        return Nodes(near)
    if isinstance(msg, FindValue):
        return Value(None, near)
    return Providers((), near)


GHOST_PREFIX = "ghost-"
GHOST_SHARED_BITS = 64  # ground ids share this many leading bits with the key: nearer than anyone honest


def ghost_ids(target: bytes, group: int, k: int) -> tuple[Contact, ...]:
    """``k`` ids a positioned attacker ground next to ``target`` (S/Kademlia's model), one group
    per colluder asked (so paths that each ask a colluder are each captured, disjointness or
    not): each shares its first GHOST_SHARED_BITS bits with the target, so they are the target's
    nearest nodes whatever the network's size. The group rides in the address, so a ghost
    answers with its own group and a captured path ends. What grinding them costs is priced
    apart (`veil sim durability`, docs/specs/dht.md)."""
    t = int.from_bytes(target, "big")
    rng = random.Random(t ^ group)
    low = 256 - GHOST_SHARED_BITS
    addr = f"{GHOST_PREFIX}{group:x}:1"
    return tuple(Contact((t ^ rng.getrandbits(low)).to_bytes(32, "big"), addr) for _ in range(k))


def grinding(k: int = 20) -> tuple[Behaviour, GhostAnswer]:
    """A colluder that grinds ids next to every key it is asked about: it (and each ghost id it
    names) answers every lookup with the ghosts of the target and no records, and swallows records
    sent to it. Install the first on colluding nodes, the second as ``DhtNetwork.ghosts``. A path
    that asks one colluder is captured: its k nearest are then ghosts."""

    def answer(msg: Request, group: int) -> Response:
        if isinstance(msg, Ping):
            return Pong()
        if isinstance(msg, FindNode | FindValue | FindProviders):
            return _nothing_but(msg, ghost_ids(msg.target if isinstance(msg, FindNode) else msg.key, group, k))
        return Stored(True)

    def behave(node: DhtNode, msg: Request, now: float, peer: str) -> Response:
        return answer(msg, node.contact.key >> 192)

    def ghost(to: Contact, msg: Request, now: float) -> Response | None:
        if not to.address.startswith(GHOST_PREFIX):
            return None
        return answer(msg, int(to.address[len(GHOST_PREFIX):].split(":")[0], 16))

    return behave, ghost
