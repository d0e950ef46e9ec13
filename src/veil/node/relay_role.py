"""The relay role: carry onion circuits (docs/specs/circuits.md) on a listener of its own.

A client (or the relay before) opens TLS 1.3 to this relay's port, pinned to the node's key,
and sends one extend request (protocol/circuit.py). The relay opens TCP to the successor only
if it knows that address under that node id — a node or relay listed in its network file
(``--network``; reread when it changes) or in its DHT routing table — never to itself, so it is
not an open proxy. It answers 200 and splices bytes both ways (net/splice.py) until either side
closes, nothing moves for ``idle`` seconds, or ``lifetime`` passes. What it carries is the
client's TLS with the successor: it cannot read it, and a byte it changes breaks that TLS.

Bounds: ``relay_rate`` bytes per second per circuit when set (``--relay-rate``), ``max_circuits`` open in total and ``max_per_ip`` per predecessor address (past them a
connection is closed at once), the handshake and the extend head within ``handshake_timeout``
(one deadline for both), a head of at most 1 KiB, one stream per circuit, and at most 2 x 64 KiB
buffered per circuit. A circuit is one thread while it lives.

Imports from: veil.errors, veil.format, veil.protocol, veil.net, veil.node.
"""

from __future__ import annotations

import collections
import json
import logging
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from veil.dht.node import DhtConfig
from veil.errors import VeilError
from veil.format.remote_text import clean
from veil.net import trace
from veil.net.deadline import WATCHDOG
from veil.net.dht_driver import DhtDriver
from veil.net.server import Router
from veil.net.splice import splice
from veil.net.tls import server_context
from veil.node.context import NodeContext
from veil.protocol.circuit import Extend, encode_reply, head_end, parse_extend
from veil.protocol.placement import relay_directory_key

log = logging.getLogger("veil.relay")

MAX_CIRCUITS = 256
MAX_PER_IP = 32
HANDSHAKE_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
IDLE = 120.0
LIFETIME = 3600.0


class KnownNodes:
    """Addresses this relay may extend to: (host, port) -> node id, from the network file
    (``port`` and ``relay_port`` of every listed node) and the DHT's contacts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime = -1.0
        self._known: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            raw = json.loads(self.path.read_text())
            known: dict[tuple[str, int], bytes] = {}
            for n in raw.get("nodes", []):
                nid = bytes.fromhex(n["node_id"])
                known[(str(n["host"]), int(n["port"]))] = nid
                if n.get("relay_port"):
                    known[(str(n["host"]), int(n["relay_port"]))] = nid
            self._known, self._mtime = known, mtime
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.warning("relay: cannot read network file %s: %s", self.path, e)

    def lookup(self, host: str, port: int, extra: dict[tuple[str, int], bytes]) -> bytes | None:
        with self._lock:
            self._reload()
            return self._known.get((host, port)) or extra.get((host, port))


class RelayRole:
    name = "relay"

    def __init__(self) -> None:
        self.ctx: NodeContext | None = None
        self.lsock: socket.socket | None = None
        self.port = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._per_ip: collections.Counter[str] = collections.Counter()
        self.open = 0
        self.total = 0
        self.refused = 0
        self.forwarded = 0
        self.known = KnownNodes(None)
        self._tls: ssl.SSLContext | None = None
        self._dir: DhtDriver | None = None  # announces this relay; asked about unknown successors
        self.announced = False
        self._verified: dict[tuple[str, int], bytes] = {}  # addresses the DHT vouched for

    def attach(self, ctx: NodeContext, router: Router) -> None:
        self.ctx = ctx
        self.known = KnownNodes(ctx.config.network)
        self.max_circuits = ctx.config.relay_max_circuits or MAX_CIRCUITS
        self.max_per_ip = ctx.config.relay_max_per_ip or MAX_PER_IP

    def start(self) -> None:
        assert self.ctx is not None
        self._tls = server_context(self.ctx.key, self.ctx.data_dir / "tls-relay")
        self.lsock = socket.create_server((self.ctx.host, self.ctx.config.relay_port or 0), backlog=128)
        self.lsock.settimeout(0.5)
        self.port = int(self.lsock.getsockname()[1])
        threading.Thread(target=self._accept_loop, name="relay-accept", daemon=True).start()
        if self.ctx.config.relay_announce:
            threading.Thread(target=self._announce, name="relay-announce", daemon=True).start()
        log.info("relay listening on %s:%d", self.ctx.host, self.port)

    def _announce(self) -> None:
        """Join the DHT as a client (no routing-table entry: a relay is not a storage candidate) and
        store a signed provider record, with this relay's circuit address, under the relay
        directory key; the driver republishes it. Retried until the DHT answers."""
        assert self.ctx is not None
        drv = DhtDriver(self.ctx.key, f"{self.ctx.host}:{self.port}", config=DhtConfig(id_bits=self.ctx.config.id_bits),
                        announce=False)  # the network's id puzzle, or every contact is dropped  # fmt: skip
        while not self._stop.is_set():
            try:
                drv.join(list(self.ctx.config.relay_announce), timeout=20)
                break
            except VeilError as e:
                log.info("relay: DHT not reachable yet (%s); retrying", e)
                self._stop.wait(2.0)
        if self._stop.is_set():
            drv.stop()
            return
        drv.provide(relay_directory_key(), ())
        drv.start()
        self._dir, self.announced = drv, True

    def stop(self) -> None:
        self._stop.set()
        if self.lsock is not None:
            self.lsock.close()
        if self._dir is not None:
            self._dir.stop()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"port": self.port, "open": self.open, "circuits": self.total, "refused": self.refused,
                    "bytes_forwarded": self.forwarded, "announced": self.announced}  # fmt: skip

    # -- circuits ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self.lsock is not None
        while not self._stop.is_set():
            try:
                sock, peer = self.lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # out of descriptors: let circuits end rather than spin
                continue
            ip = str(peer[0])
            with self._lock:
                if self.open >= self.max_circuits or self._per_ip[ip] >= self.max_per_ip:
                    self.refused += 1
                    sock.close()
                    continue
                self.open += 1
                self.total += 1
                self._per_ip[ip] += 1
            threading.Thread(target=self._serve, args=(sock, peer), name="relay-circuit", daemon=True).start()

    def _count(self, n: int) -> None:
        with self._lock:
            self.forwarded += n

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        ip = str(peer[0])
        try:
            self._carry(sock, peer)
        except Exception as e:  # one circuit's failure must not reach the accept loop
            log.debug("relay: circuit from %s ended: %s", ip, e)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self.open -= 1
                self._per_ip[ip] -= 1
                if self._per_ip[ip] <= 0:
                    del self._per_ip[ip]

    def _carry(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        assert self._tls is not None and self.ctx is not None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # handshakes are many small writes
        watch = WATCHDOG.watch(time.monotonic() + HANDSHAKE_TIMEOUT)  # handshake + head, one deadline
        WATCHDOG.arm(watch, sock.fileno())
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self._tls.wrap_socket(sock, server_side=True)
            buf = bytearray()
            while (end := head_end(buf)) < 0:
                data = tls.recv(512)
                if not data:
                    return
                buf += data
        except (OSError, ssl.SSLError, ValueError):
            return
        finally:
            WATCHDOG.release(watch)
        if end != len(buf):  # nothing may follow the head before our answer
            tls.sendall(encode_reply(400, "bytes after the extend request"))
            return
        try:
            ext = parse_extend(bytes(buf))
        except ValueError as e:
            tls.sendall(encode_reply(400, str(e)))
            return
        refusal = self._refusal(ext)
        if refusal:
            tls.sendall(encode_reply(403, refusal))
            return
        src = (self.ctx.host, 0) if self.ctx.host not in ("", "0.0.0.0", "::") else None
        try:
            out = socket.create_connection((ext.host, ext.port), CONNECT_TIMEOUT, source_address=src)
        except OSError as e:
            tls.sendall(encode_reply(502, f"cannot reach {ext.host}:{ext.port}: {clean(e)}"))
            return
        out.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        trace.record("relay", peer, f"{ext.host}:{ext.port}")
        tls.settimeout(HANDSHAKE_TIMEOUT)
        tls.sendall(encode_reply(200, "Connected"))
        splice(tls, out, idle=IDLE, lifetime=LIFETIME, stop=self._stop, on_bytes=self._count,
               rate=float(self.ctx.config.relay_rate or 0))  # fmt: skip

    def _refusal(self, ext: Extend) -> str:
        assert self.ctx is not None
        if ext.node_id == self.ctx.node_id:
            return "a relay does not extend to itself"
        extra: dict[tuple[str, int], bytes] = dict(self._verified)
        for dht in (self.ctx.services.dht, self._dir):
            if dht is not None:
                for c in dht.contacts():
                    host, _, port = c.address.rpartition(":")
                    if port.isdigit():
                        extra[(host, int(port))] = c.node_id
        known = self.known.lookup(ext.host, ext.port, extra)
        if known is None and ext.node_id is not None:
            known = self._ask_dht(ext)
        if known is None:
            return f"{ext.host}:{ext.port} is not a Veil node this relay knows"
        if known == self.ctx.node_id:
            return "a relay does not extend to itself"
        if ext.node_id is not None and known != ext.node_id:
            return f"{ext.host}:{ext.port} is known under another node id"
        return ""

    def _ask_dht(self, ext: Extend) -> bytes | None:
        """Is ``ext`` a node or relay the DHT vouches for? A signed node record (storage nodes) or
        relay-directory record (relays) of that id with that address."""
        drv = self._dir or (self.ctx.services.dht if self.ctx is not None else None)
        if drv is None or ext.node_id is None:
            return None
        addr = f"{ext.host}:{ext.port}"
        try:
            rec = drv.find_node_record(ext.node_id, timeout=5.0)
            ok = rec is not None and rec.address == addr
            if not ok:
                ok = any(r.provider_id == ext.node_id and r.address == addr
                         for r in drv.find_providers(relay_directory_key(), want=64, timeout=5.0))  # fmt: skip
        except VeilError:
            return None
        if not ok:
            return None
        with self._lock:
            if len(self._verified) < 4096:
                self._verified[(ext.host, ext.port)] = ext.node_id
        return ext.node_id
