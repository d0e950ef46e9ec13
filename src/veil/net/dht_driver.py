"""Runs a sans-I/O DhtNode (veil.dht.node) over the pinned HTTPS transport.

The DhtNode is not thread-safe, so every call into it happens under one lock; requests it
wants sent go to a small thread pool of PeerClient calls (pinned to the contact's node id),
and their replies or failures are fed back under the lock. A background thread runs
``tick`` (republish, expiry, refresh) once a second. Blocking helpers (``find_providers``,
``find_node`` ...) start an operation and wait for its ``OpDone``.

Used by the node's ``dht`` role (veil.node.dht_role, which also serves ``POST /v1/dht/rpc``)
and, with ``announce=False``, by clients that look things up without serving.
Imports from: veil.errors, veil.crypto, veil.dht, veil.net.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from veil.crypto.sign import SigningKey
from veil.dht.ids import Contact
from veil.dht.messages import (
    MAX_MESSAGE_SIZE,
    Refused,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from veil.dht.node import DhtConfig, DhtNode, OpDone, Send
from veil.dht.records import NodeRecord, ProviderRecord, decode_node_record
from veil.errors import IntegrityError, RemoteError, UnavailableError, VeilError
from veil.format.textparse import parse_hostport
from veil.net.client import Dial, PeerClient

log = logging.getLogger("veil.dht")

RPC_PATH = "/v1/dht/rpc"
RPC_TIMEOUT = 5.0
MAX_CLIENTS = 256


def parse_address(address: str) -> tuple[str, int]:
    return parse_hostport(address, "node address")


class DhtDriver:
    def __init__(
        self,
        key: SigningKey,
        address: str,
        *,
        config: DhtConfig | None = None,
        announce: bool = True,
        rpc_timeout: float = RPC_TIMEOUT,
        workers: int = 16,
        clock: Callable[[], float] = time.time,
        dial: Callable[[str, int, bytes | None], Dial] | None = None,
    ) -> None:
        self.clock = clock
        # How to reach a contact: None is direct TCP; an onion circuit transport's ``dial_for``
        # sends every lookup over circuits too (`veil get --anon` in DHT mode).
        self._dial = dial
        self.node = DhtNode(key, address, config, now=clock(), announce=announce)
        self.rpc_timeout = rpc_timeout
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dht-rpc")
        self._clients: OrderedDict[tuple[str, bytes], PeerClient] = OrderedDict()
        self._waiters: dict[int, Future[OpDone]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.joined = threading.Event()
        self._departure_listeners: list[Callable[[bytes], None]] = []

    # -- serving -------------------------------------------------------------------------

    def handle_rpc(self, body: bytes, peer: str) -> tuple[int, bytes]:
        """Answer one encoded request from ``peer`` (its IP address); IntegrityError if malformed."""
        msg = decode_request(body)
        with self._lock:
            resp = self.node.handle(msg, self.clock(), peer)
        self._flush()
        status = 429 if isinstance(resp, Refused) and resp.reason == "rate_limited" else 200
        return status, encode_response(resp)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, tick_interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(tick_interval):
                try:
                    with self._lock:
                        self.node.tick(self.clock())
                    self._flush()
                except Exception:
                    log.exception("DHT tick failed")

        self._thread = threading.Thread(target=loop, name="dht-tick", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            waiters = list(self._waiters.values())
            self._waiters.clear()
        for c in clients:
            c.close()
        for f in waiters:
            if not f.done():
                f.set_exception(UnavailableError("the DHT was stopped"))

    # -- operations ----------------------------------------------------------------------

    def join(self, addresses: list[str], timeout: float = 60.0) -> OpDone:
        """Join through any of ``addresses`` (HOST:PORT; their ids are learnt from TLS)."""
        seeds = []
        for address in addresses:
            host, port = parse_address(address)
            try:
                nid = self._peer(host, port, None).learn_node_id()
            except VeilError as e:
                log.info("bootstrap node %s unreachable: %s", address, e)
                continue
            if nid != self.node.node_id:
                seeds.append(Contact(nid, address))
        if not seeds and addresses:
            raise UnavailableError(f"none of the bootstrap nodes answered: {', '.join(addresses)}")
        done = self._run(lambda n, now: n.bootstrap(seeds, now), timeout)
        with self._lock:
            now = self.clock()
            self.node.refresh_all(now)
            if self.node.announce:
                self.node.publish_node_record(now)
        self._flush()
        self.joined.set()
        return done

    def find_node(self, target: bytes, timeout: float = 30.0) -> OpDone:
        return self._run(lambda n, now: n.find_node(target, now), timeout)

    def closest_nodes(self, target: bytes) -> list[Contact]:
        """The nodes nearest ``target`` as ``find_node`` finds them, remembered per keyspace
        region for ``region_ttl`` seconds (veil.dht.regions): placing many small files in a row
        costs one lookup per region, not one per file."""
        with self._lock:
            bits = self.node.region_bits()
            hit = self.node.regions.get(target, bits, self.clock())
        if hit is not None:
            return hit[: self.node.config.k]
        done = self.find_node(target)
        with self._lock:
            self.node.regions.put(target, bits, done.closest, self.clock())
        return list(done.closest)

    def find_providers(self, storage_index: bytes, want: int = 20, timeout: float = 30.0) -> list[ProviderRecord]:
        """Signed, verified provider records for ``storage_index`` (possibly none)."""
        done = self._run(lambda n, now: n.find_providers(storage_index, now, want), timeout)
        return list(done.providers)

    def find_node_record(self, nid: bytes, timeout: float = 30.0) -> NodeRecord | None:
        return self._run(lambda n, now: n.find_value(nid, now), timeout).record

    def operator_of(self, nid: bytes) -> str:
        """The operator label node ``nid`` declares in its signed node record, if this node holds
        that record (it stores those of nodes near its id, and those ``learn_node_record`` kept)."""
        with self._lock:
            if nid == self.node.node_id:
                return self.node.config.operator
            rec = self.node.store.node_record(nid, self.clock())
            return rec.operator if rec is not None else ""

    def learn_node_record(self, raw: bytes, nid: bytes) -> str:
        """Verify node ``nid``'s signed record (say from its ``GET /v1/node``) and keep it; returns
        the operator label it declares. IntegrityError if it does not verify or is another node's."""
        now = self.clock()
        rec = decode_node_record(raw, now, self.node.config.id_bits)
        if rec.node_id != nid:
            raise IntegrityError("the node record is another node's")
        with self._lock:
            self.node.store.put_node_record(rec, now)
        return rec.operator

    def provide(self, storage_index: bytes, shares: tuple[int, ...]) -> None:
        """Announce (and keep republishing) that this node holds ``shares`` of ``storage_index``."""
        with self._lock:
            self.node.provide(storage_index, tuple(sorted(set(shares))), self.clock())
        self._flush()

    def provide_many(self, items: list[tuple[bytes, tuple[int, ...]]], timeout: float = 60.0) -> list[OpDone]:
        """``provide`` for many storage indexes at once (one lookup per keyspace region, one
        request per node: veil.dht.batch); returns once every record is out (or ``timeout``)."""
        futs: list[tuple[int, Future[OpDone]]] = []
        with self._lock:
            for op in self.node.provide_many([(si, tuple(sorted(set(sh)))) for si, sh in items], self.clock()):
                fut: Future[OpDone] = Future()
                self._waiters[op] = fut
                futs.append((op, fut))
        self._flush()
        end = time.monotonic() + timeout
        done = []
        for op, fut in futs:
            try:
                done.append(fut.result(max(0.0, end - time.monotonic())))
            except FutureTimeout:
                with self._lock:
                    self._waiters.pop(op, None)
        return done

    def unprovide(self, storage_index: bytes) -> None:
        with self._lock:
            self.node.unprovide(storage_index)

    def on_departure(self, listener: Callable[[bytes], None]) -> None:
        """Call ``listener(node_id)`` (from a DHT thread, outside the lock; keep it quick) for
        every contact the routing table evicts because it stopped answering."""
        with self._lock:
            self._departure_listeners.append(listener)

    def closest_known(self, target: bytes, count: int) -> list[Contact]:
        """The ``count`` contacts of the routing table nearest ``target``: no network traffic."""
        with self._lock:
            return list(self.node.routing.closest(target, count))

    def contacts(self) -> list[Contact]:
        with self._lock:
            return list(self.node.routing.contacts())

    def status(self) -> dict[str, int | bool]:
        with self._lock:
            return {
                "contacts": len(self.node.routing),
                "records": len(self.node.store),
                "providing": self.node.providing,
                "joined": self.joined.is_set(),
                "id_bits": self.node.config.id_bits,
                # ids that skip the puzzle, turned away (claimed senders and replies)
                "refused_puzzle": self.node.routing.refused["puzzle"] + self.node.stats["refused_ids"],
                "refused_subnet": self.node.routing.refused["subnet"],  # over the per-network limits
            }

    # -- internals -----------------------------------------------------------------------

    def _run(self, start: Callable[[DhtNode, float], int], timeout: float) -> OpDone:
        fut: Future[OpDone] = Future()
        with self._lock:
            op = start(self.node, self.clock())
            self._waiters[op] = fut
        self._flush()
        try:
            return fut.result(timeout)
        except FutureTimeout as e:
            with self._lock:
                self._waiters.pop(op, None)
            raise UnavailableError(f"DHT lookup did not finish within {timeout:g} s") from e

    def _flush(self) -> None:
        with self._lock:
            out = self.node.take_outgoing()
            events = self.node.take_events()
            finished = [(self._waiters.pop(ev.op_id, None), ev) for ev in events]
            departed = self.node.routing.take_evicted()
            listeners = list(self._departure_listeners) if departed else []
        for nid in departed:
            for listener in listeners:
                try:
                    listener(nid)
                except Exception:
                    log.exception("departure listener failed")
        for fut, ev in finished:
            if fut is not None and not fut.done():
                fut.set_result(ev)
        for send in out:
            try:
                self._pool.submit(self._call, send)
            except RuntimeError:  # shut down
                return

    def _peer(self, host: str, port: int, nid: bytes | None) -> PeerClient:
        dial = self._dial(host, port, nid) if self._dial is not None else None
        return PeerClient(host, port, nid, timeout=self.rpc_timeout, dial=dial)

    def _client(self, to: Contact) -> PeerClient:
        key = (to.address, to.node_id)
        with self._lock:
            c = self._clients.get(key)
            if c is not None:
                self._clients.move_to_end(key)
                return c
            host, port = parse_address(to.address)
            c = self._clients[key] = self._peer(host, port, to.node_id)
            if len(self._clients) > MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                old.close()
            return c

    def _call(self, send: Send) -> None:
        try:
            reply = self._client(send.to).request(
                "POST",
                RPC_PATH,
                encode_request(send.message),
                {"Content-Type": "application/cbor"},
                max_response=MAX_MESSAGE_SIZE,
                check=False,
            )
            if reply.status not in (200, 429):
                raise RemoteError(f"DHT request to {send.to.address} answered HTTP {reply.status}")
            resp = decode_response(reply.body)
        except (VeilError, ValueError) as e:
            log.debug("DHT request to %s failed: %s", send.to.address, e)
            with self._lock:
                self.node.on_timeout(send.request_id, self.clock())
        else:
            with self._lock:
                self.node.on_reply(send.request_id, resp, self.clock())
        self._flush()
