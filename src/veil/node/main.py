"""Run one node: load identity, attach the enabled roles to one HTTPS listener, serve until SIGTERM.

On start the node writes ``DATA/node.json`` (address, node id, roles, pid) atomically, so a
devnet or a test can find it; ``GET /v1/node`` answers the same plus each role's status.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from veil import __version__
from veil.durable import write_json_atomic
from veil.errors import UsageError
from veil.net.server import HTTPSServer, Request, Response, Router, cbor_response, serve
from veil.net.tls import server_context
from veil.node.context import NodeContext, Role
from veil.node.identity import load_or_create

log = logging.getLogger("veil.node")

# role name -> "module:factory"; a factory takes no arguments and returns a Role.
ROLE_FACTORIES: dict[str, str] = {
    "storage": "veil.node.storage_role:StorageRole",
    "validator": "veil.node.validator_role:ValidatorRole",
    "gateway": "veil.gateway.role:GatewayRole",
    "dht": "veil.node.dht_role:DhtRole",
    "repairer": "veil.node.repair_role:RepairerRole",
    "payments": "veil.node.payment_gate:PaymentsRole",
}


def make_role(name: str) -> Role:
    spec = ROLE_FACTORIES.get(name)
    if spec is None:
        raise UsageError(f"unknown role {name!r}; known roles: {', '.join(sorted(ROLE_FACTORIES))}")
    mod, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(mod), attr)
    role: Role = factory()
    return role


class Node:
    def __init__(self, data_dir: Path, host: str, port: int, roles: list[str], config: dict[str, Any]) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        key = load_or_create(data_dir / "identity.key")
        self.ctx = NodeContext(data_dir=data_dir, key=key, host=host, port=port, config=config)
        self.roles = [make_role(r) for r in roles]
        self.router = Router()
        self.router.add("GET", "/v1/node", self._status)
        for role in self.roles:
            role.attach(self.ctx, self.router)
        self.server: HTTPSServer | None = None
        self.stopped = threading.Event()

    def _status(self, req: Request) -> Response:
        return cbor_response(self.status())

    def status(self) -> dict[str, Any]:
        return {
            "node_id": self.ctx.node_id,
            "public_key": self.ctx.key.public_key,
            "version": __version__,
            "roles": {r.name: r.status() for r in self.roles},
        }

    def start(self) -> None:
        ctx = server_context(self.ctx.key, self.data_dir / "tls")
        server = self.server = serve((self.ctx.host, self.ctx.port), self.router, ctx,
                                     limits=self.ctx.config.get("http_limits"))
        self.ctx.port = int(server.server_address[1])
        for role in self.roles:
            role.start()
        write_json_atomic(
            self.data_dir / "node.json",
            {
                "host": self.ctx.host,
                "port": self.ctx.port,
                "node_id": self.ctx.node_id.hex(),
                "roles": [r.name for r in self.roles],
                "pid": os.getpid(),
            },
        )
        log.info("node %s listening on %s:%d", self.ctx.node_id.hex()[:16], self.ctx.host, self.ctx.port)

    def stop(self) -> None:
        for role in reversed(self.roles):
            role.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.stopped.set()


def run_node(data_dir: Path, host: str, port: int, roles: list[str], config: dict[str, Any]) -> None:
    """Serve until SIGTERM/SIGINT."""
    node = Node(data_dir, host, port, roles, config)
    try:
        node.start()
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=node.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    node.stopped.wait()
