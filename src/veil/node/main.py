"""Run one node: load identity, attach the enabled roles to one HTTPS listener, serve until SIGTERM.

On start the node writes ``DATA/node.json`` (address, node id, roles, pid, and the metrics
listener's port when there is one) atomically, so a devnet or a test can find it; ``GET /v1/node``
answers the same plus each role's status, ``GET /healthz`` whether the node is healthy (also on
the metrics listener, node/metrics_http.py, with ``GET /metrics``; docs/specs/operations.md).

NODE_ROLES are the roles this package defines; a caller above it (cli/node.py) adds its own
(the gateway role lives in veil.gateway, above node) and passes the table to Node, so node
never imports a higher layer. Each factory imports its role's module only when it is run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from veil import __version__
from veil.dht.records import sign_node_record
from veil.durable import write_json_atomic
from veil.errors import UsageError
from veil.format.textparse import parse_hostport
from veil.net import trace
from veil.net.server import HTTPSServer, Request, Response, Router, cbor_response, serve
from veil.net.tls import server_context
from veil.node.context import NodeConfig, NodeContext, Role
from veil.node.identity import load_or_create
from veil.node.metrics import Metrics
from veil.node.metrics_http import MetricsListener, health_response
from veil.node.metrics_roles import role_metrics

RECORD_TTL = 3600  # seconds the node record in GET /v1/node is valid
log = logging.getLogger("veil.node")

RoleFactory = Callable[[], Role]


def _storage() -> Role:
    from veil.node.storage_role import StorageRole

    return StorageRole()


def _validator() -> Role:
    from veil.node.validator_role import ValidatorRole

    return ValidatorRole()


def _dht() -> Role:
    from veil.node.dht_role import DhtRole

    return DhtRole()


def _repairer() -> Role:
    from veil.node.repair_role import RepairerRole

    return RepairerRole()


def _payments() -> Role:
    from veil.node.payments_role import PaymentsRole

    return PaymentsRole()


def _mutable() -> Role:
    from veil.node.mutable_role import MutableRole

    return MutableRole()


def _relay() -> Role:
    from veil.node.relay_role import RelayRole

    return RelayRole()


# role name -> a factory taking no arguments and returning the Role.
NODE_ROLES: dict[str, RoleFactory] = {
    "storage": _storage,
    "validator": _validator,
    "dht": _dht,
    "repairer": _repairer,
    "payments": _payments,
    "mutable": _mutable,
    "relay": _relay,
}


def make_role(name: str, factories: Mapping[str, RoleFactory] = NODE_ROLES) -> Role:
    factory = factories.get(name)
    if factory is None:
        raise UsageError(f"unknown role {name!r}; known roles: {', '.join(sorted(factories))}")
    return factory()


class Node:
    def __init__(self, data_dir: Path, host: str, port: int, roles: list[str], config: NodeConfig,
                 factories: Mapping[str, RoleFactory] = NODE_ROLES) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        key = load_or_create(data_dir / "identity.key", config.id_bits)
        self.metrics = Metrics()
        self.ctx = NodeContext(data_dir=data_dir, key=key, host=host, port=port, config=config, metrics=self.metrics)
        self.roles = [make_role(r, factories) for r in roles]
        self.router = Router()
        self.router.add("GET", "/v1/node", self._status)
        self.router.add("GET", "/healthz", lambda req: health_response(self.health))
        self.metrics_listener: MetricsListener | None = None
        for role in self.roles:
            role.attach(self.ctx, self.router)
        self.server: HTTPSServer | None = None
        self.stopped = threading.Event()

    def _status(self, req: Request) -> Response:
        return cbor_response(self.status())

    def status(self) -> dict[str, Any]:
        op = self.ctx.config.operator or ""
        return {
            "node_id": self.ctx.node_id,
            "public_key": self.ctx.key.public_key,
            "version": __version__,
            # Its signed node record (dht/records.py), the declared operator label in it: a peer
            # that verifies it learns the label (node/repair_role.py, client/network.py: labelled).
            "operator": op,
            "record": sign_node_record(self.ctx.key, self.ctx.config.dht_advertise or f"{self.ctx.host}:{self.ctx.port}",
                                       int(time.time()) + RECORD_TTL, op).raw,
            "roles": {r.name: r.status() for r in self.roles},
            # connections by state (as of the server's last tick), queued heads, worker threads
            "http": self.server.stats() if self.server is not None else {},
        }

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether this node does its job now: every role answers, the DHT has joined, the
        validator has a quorum, the store is not draining. The body names what is wrong."""
        problems: list[str] = []
        for role in self.roles:
            try:
                st = role.status()
            except Exception as e:  # a role that cannot say how it is, is not well
                problems.append(f"{role.name}: status failed ({type(e).__name__})")
                continue
            if role.name == "dht" and not st.get("joined"):
                problems.append("dht: not joined")
            elif role.name == "validator" and st.get("quorum") is False:
                problems.append("validator: no quorum")
            elif role.name == "storage" and st.get("drain", {}).get("state") in ("running", "done"):
                problems.append("storage: draining")
        return not problems, {"status": "unhealthy" if problems else "ok", "node_id": self.ctx.node_id.hex(),
                              "version": __version__, "roles": [r.name for r in self.roles], "problems": problems}

    def _role_statuses(self) -> dict[str, dict[str, Any]]:
        out = {}
        for role in self.roles:
            try:
                out[role.name] = role.status()
            except Exception:  # left out of this scrape; /healthz reports it
                log.debug("status of role %s failed", role.name, exc_info=True)
        return out

    def start(self) -> None:
        ctx = server_context(self.ctx.key, self.data_dir / "tls")
        server = self.server = serve((self.ctx.host, self.ctx.port), self.router, ctx,
                                     limits=self.ctx.config.http_limits, observer=self.metrics.observer("node"))
        self.ctx.port = int(server.server_address[1])
        trace.set_label(self.ctx.node_id.hex()[:16])
        self.metrics.add_source(role_metrics(self._role_statuses))
        for role in self.roles:
            role.start()
        if self.ctx.config.metrics_listen:
            mhost, mport = parse_hostport(self.ctx.config.metrics_listen, "--metrics-listen", allow_zero=True)
            self.metrics_listener = MetricsListener(self.metrics, self.health)
            try:
                self.metrics_listener.start(mhost, mport)
            except OSError as e:
                raise UsageError(f"cannot listen on {mhost}:{mport} (--metrics-listen): {e.strerror or e}") from e
        info: dict[str, Any] = {
            "host": self.ctx.host,
            "port": self.ctx.port,
            "node_id": self.ctx.node_id.hex(),
            "roles": [r.name for r in self.roles],
            "pid": os.getpid(),
            **({"operator": self.ctx.config.operator} if self.ctx.config.operator else {}),
        }
        for role in self.roles:
            if role.name == "relay":  # clients need the relay listener's port (network files list it)
                info["relay_port"] = role.status()["port"]
        if self.metrics_listener is not None:
            info["metrics_port"] = self.metrics_listener.port
        write_json_atomic(self.data_dir / "node.json", info)
        log.info("node %s listening on %s:%d, roles %s", self.ctx.node_id.hex()[:16], self.ctx.host, self.ctx.port,
                 ",".join(r.name for r in self.roles))
        if self.metrics_listener is not None:
            log.info("metrics on %s/metrics", self.metrics_listener.url)

    def stop(self) -> None:
        log.info("node stopping")
        if self.metrics_listener is not None:
            self.metrics_listener.stop()
        for role in reversed(self.roles):
            role.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.stopped.set()


def run_node(data_dir: Path, host: str, port: int, roles: list[str], config: NodeConfig,
             factories: Mapping[str, RoleFactory] = NODE_ROLES,
             on_started: Callable[[Node], None] | None = None) -> None:  # fmt: skip
    """Serve until SIGTERM/SIGINT; ``on_started`` is called once the node listens."""
    node = Node(data_dir, host, port, roles, config, factories)
    try:
        node.start()
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    if on_started is not None:
        on_started(node)

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=node.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.stopped.wait()
    log.info("node stopped")
