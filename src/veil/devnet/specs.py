"""A devnet's files: where it lives, what nodes it runs (devnet.json) and their data dirs.

Kept apart from manager.py (the processes) so that ledger.py and payments.py, which
manager.py calls while creating a devnet, can edit the specs without importing manager.

Imports from: veil.client, veil.durable, veil.errors.
"""

from __future__ import annotations

import json
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.client.network import veil_home
from veil.durable import write_json_atomic
from veil.errors import UsageError


def devnet_dir(path: Path | None = None) -> Path:
    return path or Path(os.environ.get("VEIL_DEVNET") or veil_home() / "devnet")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port for a devnet process to listen on later, picked below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` lies in the ephemeral range, which outgoing
    connections and other programs' ``bind(0)`` draw from too. Between this pick and the node's own
    bind, one of them could take it ("Address already in use": a devnet test saw it under load).
    Below the range only another explicit pick can collide, and the bind test here catches a port
    in use."""
    hi = max(2048, _ephemeral_low())
    lo = max(1024, hi - 12000)
    rng = random.SystemRandom()
    for _ in range(64):
        port = rng.randrange(lo, hi)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: take what the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NodeSpec:
    name: str
    port: int
    roles: list[str]
    args: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "roles": self.roles, "args": self.args}


class DevnetFiles:
    """What a devnet runs, as kept in its directory: the node specs (devnet.json) and data dirs."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = devnet_dir(root)
        self.config_path = self.root / "devnet.json"
        self.network_path = self.root / "network.json"
        self.dht_network_path = self.root / "network-dht.json"
        self.static_network_path = self.root / "nodes.json"
        self.uploader_path = self.root / "uploader.key"  # staked; signs `veil put`'s tickets without a wallet

    # -- config ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.config_path.exists()

    def specs(self) -> list[NodeSpec]:
        try:
            raw = json.loads(self.config_path.read_text())
            return [NodeSpec(n["name"], int(n["port"]), list(n["roles"]), list(n.get("args", []))) for n in raw["nodes"]]
        except FileNotFoundError as e:
            raise UsageError(f"no devnet at {self.root}: run `veil devnet up` first") from e
        except (KeyError, ValueError, TypeError) as e:
            raise UsageError(f"{self.config_path} is malformed: {e}") from e

    def _save_specs(self, specs: list[NodeSpec], extra: dict[str, Any] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        value: dict[str, Any] = {"nodes": [s.to_json() for s in specs]}
        old: dict[str, Any] = {}
        if self.config_path.exists():
            old = json.loads(self.config_path.read_text())
        value.update({k: v for k, v in old.items() if k != "nodes"})
        value.update(extra or {})
        write_json_atomic(self.config_path, value)

    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.config_path.read_text())) if self.config_path.exists() else {}

    def add_specs(self, count: int, roles: list[str], args: list[str] | None = None, prefix: str = "node") -> list[NodeSpec]:
        specs = self.specs() if self.exists() else []
        taken = {s.name for s in specs}
        new: list[NodeSpec] = []
        i = 1
        while len(new) < count:
            name = f"{prefix}-{i:02d}"
            i += 1
            if name in taken:
                continue
            new.append(NodeSpec(name, free_port(), roles, list(args or [])))
        self._save_specs(specs + new)
        return new

    def node_dir(self, spec: NodeSpec) -> Path:
        return self.root / spec.name
