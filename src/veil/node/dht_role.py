"""The ``dht`` role: serves ``POST /v1/dht/rpc`` and keeps this node in the Kademlia DHT.

Config (NodeConfig, from `veil node run`): ``bootstrap`` (list of HOST:PORT to join through; none for
the first node of a network), ``dht_advertise`` (HOST:PORT others should use; default the
listen address), ``dht_peer_rate`` (requests per second allowed from one peer address; raise
it on a devnet, where every peer is 127.0.0.1), ``id_bits`` (the network's node-id puzzle:
contacts and records whose ids do not solve it are refused). Other roles reach the DHT as
``ctx.services.dht`` (a veil.net.dht_driver.DhtDriver), set once the role has started.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from veil.dht.messages import MAX_MESSAGE_SIZE
from veil.dht.node import DhtConfig
from veil.errors import VeilError
from veil.format.remote_text import clean
from veil.net.dht_driver import RPC_PATH, DhtDriver
from veil.net.server import HTTPError, Request, Response, Router
from veil.node.context import NodeConfig, NodeContext

log = logging.getLogger("veil.dht")

JOIN_RETRY_MAX = 30.0
PEER_LOG_INTERVAL = 5.0  # seconds between two looks at the routing table for peers to log
PEER_LOG_MAX = 20  # peers named per look; the rest are counted


def dht_config(config: NodeConfig) -> DhtConfig:
    """The DHT parameters for a node's config: the defaults, with ``dht_peer_rate`` if set."""
    rate = config.dht_peer_rate
    base = DhtConfig(id_bits=config.id_bits, operator=config.operator or "")
    if not rate:
        return base
    r = float(rate)
    return replace(base, request_rate=r, request_burst=10 * r, store_rate=r, store_burst=10 * r)


class DhtRole:
    name = "dht"

    def __init__(self) -> None:
        self.ctx: NodeContext | None = None
        self.driver: DhtDriver | None = None
        self._stop = threading.Event()
        self._joiner: threading.Thread | None = None
        self._last_error = ""

    def attach(self, ctx: NodeContext, router: Router) -> None:
        self.ctx = ctx
        router.add("POST", RPC_PATH, self._rpc)

    def start(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        address = ctx.config.dht_advertise or f"{ctx.host}:{ctx.port}"
        self.driver = DhtDriver(ctx.key, address, config=dht_config(ctx.config))
        self.driver.start()
        ctx.services.dht = self.driver
        bootstrap = list(ctx.config.bootstrap)
        self._joiner = threading.Thread(target=self._join, args=(bootstrap,), name="dht-join", daemon=True)
        self._joiner.start()
        threading.Thread(target=self._log_peers, name="dht-peers", daemon=True).start()

    def _log_peers(self) -> None:
        """Log the peers that joined and left the routing table (every PEER_LOG_INTERVAL s)."""
        known: set[bytes] = set()
        while not self._stop.wait(PEER_LOG_INTERVAL):
            driver = self.driver
            if driver is None:
                continue
            now = {c.node_id: c.address for c in driver.contacts()}
            joined = [i for i in now if i not in known]
            for i in joined[:PEER_LOG_MAX]:
                log.info("peer joined: %s at %s", i.hex()[:16], clean(now[i], 80))
            if len(joined) > PEER_LOG_MAX:
                log.info("peers joined: %d more", len(joined) - PEER_LOG_MAX)
            left = known - now.keys()
            for i in list(left)[:PEER_LOG_MAX]:
                log.info("peer left: %s", i.hex()[:16])
            if len(left) > PEER_LOG_MAX:
                log.info("peers left: %d more", len(left) - PEER_LOG_MAX)
            known = set(now)

    def _join(self, bootstrap: list[str]) -> None:
        driver = self.driver
        assert driver is not None
        if not bootstrap:
            with driver._lock:
                driver.node.publish_node_record(driver.clock())
            driver.joined.set()
            return
        delay = 0.5
        while not self._stop.is_set():
            try:
                driver.join(bootstrap)
                contacts = len(driver.contacts())
                if contacts:
                    log.info("joined the DHT: %d contacts", contacts)
                    return
                self._last_error = "no node answered the join lookup"
            except VeilError as e:
                self._last_error = str(e)
                log.warning("joining the DHT failed (%s); retrying", clean(e))
            self._stop.wait(delay)
            delay = min(JOIN_RETRY_MAX, delay * 2)

    def _rpc(self, req: Request) -> Response:
        if self.driver is None:
            raise HTTPError(503, "unavailable", "the DHT is starting")
        body = req.read_body(MAX_MESSAGE_SIZE)
        status, data = self.driver.handle_rpc(body, str(req.peer[0]))
        return Response(status=status, body=data, content_type="application/cbor")

    def stop(self) -> None:
        self._stop.set()
        if self.driver is not None:
            self.driver.stop()

    def status(self) -> dict[str, Any]:
        if self.driver is None:
            return {"joined": False}
        st: dict[str, Any] = dict(self.driver.status())
        if self._last_error and not st["joined"]:
            st["last_error"] = self._last_error[:200]
        return st
