"""`veil devnet`: start, stop, inspect a network of node processes on 127.0.0.1.

    $VEIL_HOME/devnet/devnet.json    what to run: each node's name, port and roles
    $VEIL_HOME/devnet/network.json   what clients read: each node's address and node id
    $VEIL_HOME/devnet/<name>/        a node's data dir (identity, shares, log)

Ports and identities are kept, so `up` on an existing devnet restarts the same nodes with
their data, and links made before still work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.client.network import Network, NodeInfo, load_network, veil_home
from veil.errors import UnavailableError, UsageError, VeilError
from veil.net.client import PeerClient

START_TIMEOUT = 30.0


def devnet_dir(path: Path | None = None) -> Path:
    return path or Path(os.environ.get("VEIL_DEVNET") or veil_home() / "devnet")


def free_port() -> int:
    with socket.socket() as s:
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


class Devnet:
    def __init__(self, root: Path | None = None) -> None:
        self.root = devnet_dir(root)
        self.config_path = self.root / "devnet.json"
        self.network_path = self.root / "network.json"

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
        _write_json(self.config_path, value)

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

    # -- processes ------------------------------------------------------------------------
    def node_dir(self, spec: NodeSpec) -> Path:
        return self.root / spec.name

    def pid_of(self, spec: NodeSpec) -> int | None:
        try:
            info = json.loads((self.node_dir(spec) / "node.json").read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        if _reap_or_zombie(pid):
            return None
        return pid

    def start_node(self, spec: NodeSpec) -> None:
        d = self.node_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        (d / "node.json").unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "veil.cli.main", "node", "run",
            "--data", str(d), "--listen", f"127.0.0.1:{spec.port}", "--role", ",".join(spec.roles), *spec.args,
        ]
        log = open(d / "node.log", "ab")
        subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def wait_ready(self, specs: list[NodeSpec], timeout: float = START_TIMEOUT) -> dict[str, bytes]:
        deadline = time.monotonic() + timeout
        ids: dict[str, bytes] = {}
        for spec in specs:
            path = self.node_dir(spec) / "node.json"
            while True:
                try:
                    info = json.loads(path.read_text())
                    ids[spec.name] = bytes.fromhex(info["node_id"])
                    break
                except (OSError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    tail = _tail(self.node_dir(spec) / "node.log")
                    raise UnavailableError(f"{spec.name} did not start within {timeout:.0f}s: {tail}")
                time.sleep(0.05)
        return ids

    def write_network(self, ids: dict[str, bytes]) -> Network:
        specs = self.specs()
        old_gateway = None
        if self.network_path.exists():
            try:
                old_gateway = load_network(self.network_path).gateway
            except VeilError:
                pass
        nodes = [NodeInfo("127.0.0.1", s.port, ids[s.name], s.name, tuple(s.roles)) for s in specs if s.name in ids]
        net = Network(nodes=nodes)
        cfg = self.config()
        net.gateway = cfg.get("gateway") or old_gateway or net.gateway
        net.extra = {k: v for k, v in cfg.items() if k in ("chain_id",)}
        _write_json(self.network_path, net.to_json())
        return net

    def known_ids(self) -> dict[str, bytes]:
        ids = {}
        for spec in self.specs():
            try:
                ids[spec.name] = bytes.fromhex(json.loads((self.node_dir(spec) / "node.json").read_text())["node_id"])
            except (OSError, ValueError, KeyError):
                pass
        return ids

    def up(self, nodes: int, roles: list[str], args: list[str]) -> tuple[Network, list[str]]:
        """Start the devnet (creating ``nodes`` nodes if there is none). Returns (network, started)."""
        if not self.exists():
            self.add_specs(nodes, roles, args)
            from veil.devnet.ledger import add_validator  # the ledger's validator + faucet genesis

            add_validator(self)
        if not any("gateway" in s.roles for s in self.specs()):
            self.add_gateway()
        specs = self.specs()
        started = []
        for spec in specs:
            if self.pid_of(spec) is None:
                self.start_node(spec)
                started.append(spec.name)
        ids = self.wait_ready(specs)
        return self.write_network(ids), started

    def add_gateway(self) -> NodeSpec:
        """Add a gateway node; its browser URL becomes the network's gateway (share links)."""
        port = free_port()
        args = ["--gateway-listen", f"127.0.0.1:{port}", "--network", str(self.network_path)]
        spec = self.add_specs(1, ["gateway"], args, prefix="gateway")[0]
        self._save_specs(self.specs(), {"gateway": f"http://127.0.0.1:{port}"})
        return spec

    def stop_node(self, spec: NodeSpec, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
        return bool(self.stop_nodes([spec], sig, timeout))

    def stop_nodes(self, specs: list[NodeSpec], sig: int = signal.SIGTERM, timeout: float = 10.0) -> list[str]:
        """Signal every running node in ``specs`` at once, then wait for all (SIGKILL after timeout)."""
        pids: dict[str, int] = {}
        for spec in specs:
            pid = self.pid_of(spec)
            if pid is None:
                continue
            try:
                os.kill(pid, sig)
                pids[spec.name] = pid
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        waiting = dict(pids)
        while waiting and time.monotonic() < deadline:
            for name, pid in list(waiting.items()):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    del waiting[name]
                    continue
                if _reap_or_zombie(pid):
                    del waiting[name]
            time.sleep(0.02)
        for pid in waiting.values():
            os.kill(pid, signal.SIGKILL)
            _reap_or_zombie(pid)
        return list(pids)

    def down(self) -> list[str]:
        return self.stop_nodes(self.specs())

    def status(self) -> list[dict[str, Any]]:
        net = load_network(self.network_path) if self.network_path.exists() else Network(nodes=[])
        by_name = {n.name: n for n in net.nodes}
        rows = []
        for spec in self.specs():
            row: dict[str, Any] = {"name": spec.name, "addr": f"127.0.0.1:{spec.port}", "roles": spec.roles,
                                   "pid": self.pid_of(spec), "health": "down"}
            info = by_name.get(spec.name)
            if info is not None:
                row["node_id"] = info.node_id.hex()
                try:
                    st = PeerClient(info.host, info.port, info.node_id, timeout=3).call("GET", "/v1/node")
                    row["health"] = "up"
                    row["roles_status"] = st.get("roles", {}) if isinstance(st, dict) else {}
                except VeilError as e:
                    row["health"] = "down" if row["pid"] is None else f"unhealthy: {e}"
            rows.append(row)
        return rows


def _reap_or_zombie(pid: int) -> bool:
    """True if ``pid`` has exited (reaping it when it is our own child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "no output"
    except OSError:
        return "no log"


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True))
    os.replace(tmp, path)
