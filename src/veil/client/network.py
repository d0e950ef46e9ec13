"""The set of nodes a client talks to, and where the client finds it.

A network file (JSON) lists nodes by address and node id; `veil devnet up` writes one at
``$VEIL_HOME/devnet/network.json`` and the client finds it there by itself. ``--network``
or ``VEIL_NETWORK`` point elsewhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.errors import UsageError
from veil.net.client import PeerClient

DEFAULT_GATEWAY = "https://127.0.0.1:8080"


def veil_home() -> Path:
    return Path(os.environ.get("VEIL_HOME") or Path.home() / ".veil")


def default_network_path() -> Path:
    env = os.environ.get("VEIL_NETWORK")
    return Path(env) if env else veil_home() / "devnet" / "network.json"


@dataclass(frozen=True)
class NodeInfo:
    host: str
    port: int
    node_id: bytes
    name: str = ""
    roles: tuple[str, ...] = ("storage",)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or f"{self.addr} ({self.node_id.hex()[:8]})"


@dataclass
class Network:
    nodes: list[NodeInfo]
    gateway: str = DEFAULT_GATEWAY
    extra: dict[str, Any] = field(default_factory=dict)
    _clients: dict[bytes, PeerClient] = field(default_factory=dict, repr=False)

    def storage_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if "storage" in n.roles]

    def client(self, node: NodeInfo, timeout: float = 30.0) -> PeerClient:
        c = self._clients.get(node.node_id)
        if c is None:
            c = self._clients[node.node_id] = PeerClient(node.host, node.port, node.node_id, timeout)
        return c

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "nodes": [
                {"name": n.name, "host": n.host, "port": n.port, "node_id": n.node_id.hex(), "roles": list(n.roles)}
                for n in self.nodes
            ],
            **self.extra,
        }


def network_from_json(value: Any, where: str = "network file") -> Network:
    try:
        nodes = [
            NodeInfo(
                host=str(n["host"]), port=int(n["port"]), node_id=bytes.fromhex(n["node_id"]),
                name=str(n.get("name", "")), roles=tuple(n.get("roles", ["storage"])),
            )
            for n in value["nodes"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{where} is malformed: {e}") from e
    extra = {k: v for k, v in value.items() if k not in ("nodes", "gateway")}
    return Network(nodes=nodes, gateway=str(value.get("gateway") or DEFAULT_GATEWAY), extra=extra)


def load_network(path: Path | None = None) -> Network:
    p = path or default_network_path()
    try:
        value = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise UsageError(
            f"no network found at {p}: start one with `veil devnet up`, or pass --network FILE"
        ) from e
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read network file {p}: {e}") from e
    net = network_from_json(value, str(p))
    if gw := os.environ.get("VEIL_GATEWAY"):
        net.gateway = gw
    return net
