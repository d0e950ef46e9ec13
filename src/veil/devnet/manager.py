"""`veil devnet`: start, stop, inspect a network of node processes on 127.0.0.1.

    $VEIL_HOME/devnet/devnet.json        what to run: each node's name, port, roles and args
    $VEIL_HOME/devnet/network.json       what clients read by default: bootstrap addresses (every
                                         storage node known when it was written) plus the
                                         validator and gateway; clients find storage nodes and
                                         share holders through the DHT
    $VEIL_HOME/devnet/network-dht.json   the same with only the first few bootstrap addresses
    $VEIL_HOME/devnet/nodes.json         every node's address and node id: the static list that
                                         `devnet status` and the devnet's gateway use
    $VEIL_HOME/devnet/<name>/            a node's data dir (identity, shares, log)

Every node serves Prometheus metrics on a loopback port of its own (``--metrics-listen
127.0.0.1:0``; the port is in its node.json), which `veil devnet status --metrics` reads.
Storage nodes run the ``storage``, ``dht``, ``repairer`` and ``mutable`` (folders) roles. The first one starts the
DHT; every other joins it through ``--bootstrap`` (the first node's address, or for nodes
added later, live nodes' addresses): the nodes share no file. Ports and identities are kept,
so `up` on an existing devnet restarts the same nodes with their data, and links made before
still work. `add` and `kill` make churn: new nodes join, killed ones vanish (SIGKILL).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from veil.client.network import Network, NodeInfo, load_network
from veil.client.tickets import write_uploader_key
from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.devnet.ledger import add_validators, register_nodes, sponsor_nodes, sponsor_uploader
from veil.devnet.payments import admit_new_nodes, admit_storage_nodes, charge_new_nodes, charge_storage_nodes
from veil.devnet.specs import DevnetFiles, NodeSpec, free_port
from veil.durable import write_json_atomic
from veil.errors import UnavailableError, UsageError, VeilError
from veil.ledger.params import Params
from veil.net.client import PeerClient

START_TIMEOUT = 30.0
STORAGE_ROLES = ["storage", "dht", "repairer", "mutable"]
# Every devnet peer is 127.0.0.1, and DHT rate limits are per peer address.
DEVNET_DHT_RATE = "10000"
DEFAULT_REPAIR_INTERVAL = "120"
BOOTSTRAP_COUNT = 3
# Every devnet peer is 127.0.0.1, so a relay's per-address circuit bound must allow the whole devnet.
DEVNET_RELAY_PER_IP = "4096"


class Devnet(DevnetFiles):
    """A devnet's files (DevnetFiles) and its node processes."""

    def add_storage_specs(self, count: int, args: list[str]) -> list[NodeSpec]:
        """Storage nodes that join the DHT through live nodes (the first node of a new devnet
        starts it); ``args`` go to every new node (capacity, repair interval ...)."""
        boot = self.bootstrap_addresses()
        extra = ["--dht-peer-rate", DEVNET_DHT_RATE]
        if "--repair-interval" not in args:
            extra += ["--repair-interval", DEFAULT_REPAIR_INTERVAL]
        new = self.add_specs(count, STORAGE_ROLES, args + extra)
        if not boot:
            boot = [f"127.0.0.1:{new[0].port}"]
        for spec in new:
            if f"127.0.0.1:{spec.port}" not in boot:
                spec.args += ["--bootstrap", ",".join(boot)]
        self._save_specs([s for s in self.specs() if s.name not in {n.name for n in new}] + new)
        return new

    def add_relay_specs(self, count: int) -> list[NodeSpec]:
        """Relays (`--role relay`): each keeps its circuit port across restarts and may extend
        to every node of the devnet's node list (nodes.json, which lists the relays too)."""
        new = []
        for _ in range(count):
            args = ["--relay-port", str(free_port()), "--network", str(self.static_network_path),
                    "--relay-max-per-ip", DEVNET_RELAY_PER_IP]  # fmt: skip
            boot = self.bootstrap_addresses() or [f"127.0.0.1:{s.port}" for s in self.specs() if "dht" in s.roles][:3]
            if boot:  # announced in the DHT's relay directory too (retried until the DHT is up)
                args += ["--relay-announce", ",".join(boot)]
            new += self.add_specs(1, ["relay"], args, prefix="relay")
        return new

    def bootstrap_addresses(self) -> list[str]:
        """Addresses of up to BOOTSTRAP_COUNT running DHT nodes (oldest first)."""
        if not self.exists():
            return []
        return [f"127.0.0.1:{s.port}" for s in self.specs() if "dht" in s.roles and self.pid_of(s) is not None][
            :BOOTSTRAP_COUNT
        ]

    # -- processes ------------------------------------------------------------------------
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
            "--data", str(d), "--listen", f"127.0.0.1:{spec.port}", "--role", ",".join(spec.roles),
            "--id-bits", str(DEVNET_ID_BITS), "--metrics-listen", "127.0.0.1:0", *self._with_live_bootstrap(spec),
        ]
        log = open(d / "node.log", "ab")
        subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _with_live_bootstrap(self, spec: NodeSpec) -> list[str]:
        """``spec.args``, with the DHT nodes running now added to its bootstrap list.

        A node's routing table is not kept across restarts, so a restarted node must join
        through someone: the seed node (started with no --bootstrap) or a node whose bootstrap
        nodes are gone would otherwise stay alone."""
        if "dht" not in spec.roles:
            return list(spec.args)
        own = f"127.0.0.1:{spec.port}"
        live = [a for a in self.bootstrap_addresses() if a != own]
        args = list(spec.args)
        if "--bootstrap" in args:
            i = args.index("--bootstrap") + 1
            known = args[i].split(",")
            args[i] = ",".join(known + [a for a in live if a not in known])
        elif live:
            args += ["--bootstrap", ",".join(live)]
        return args

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
        if self.static_network_path.exists():
            try:
                old_gateway = load_network(self.static_network_path).gateway
            except VeilError:
                pass
        nodes = [NodeInfo("127.0.0.1", s.port, ids[s.name], s.name, tuple(s.roles)) for s in specs if s.name in ids]
        relay_ports = {ids[s.name]: int(s.args[s.args.index("--relay-port") + 1])
                       for s in specs if s.name in ids and "--relay-port" in s.args}  # fmt: skip
        net = Network(nodes=nodes, bootstrap=self.bootstrap_addresses(), relay_ports=relay_ports,
                      id_bits=DEVNET_ID_BITS)
        cfg = self.config()
        net.gateway = cfg.get("gateway") or old_gateway or net.gateway
        net.extra = {k: v for k, v in cfg.items() if k in ("chain_id", "genesis", "devnet_uploader")}
        _write_json(self.static_network_path, net.to_json())
        if net.bootstrap:
            others = [n for n in nodes if "storage" not in n.roles]
            every = [n.addr for n in nodes if "storage" in n.roles and "dht" in n.roles]
            for path, boot in ((self.network_path, every), (self.dht_network_path, net.bootstrap)):
                _write_json(path, Network(nodes=others, gateway=net.gateway, extra=net.extra, bootstrap=boot,
                                          relay_ports=relay_ports, id_bits=net.id_bits).to_json())
        else:
            _write_json(self.network_path, net.to_json())
        return net

    def wait_joined(self, specs: list[NodeSpec], timeout: float = START_TIMEOUT) -> None:
        """Wait until every DHT node of ``specs`` has joined (knows at least one other node)."""
        deadline = time.monotonic() + timeout
        ids = self.known_ids()
        for spec in specs:
            if "dht" not in spec.roles or spec.name not in ids:
                continue
            peer = PeerClient("127.0.0.1", spec.port, ids[spec.name], timeout=3)
            alone = len([s for s in self.specs() if "dht" in s.roles]) == 1
            while True:
                try:
                    st = peer.call("GET", "/v1/node")["roles"]["dht"]
                    if st["joined"] and (alone or st["contacts"] > 0):
                        break
                except (VeilError, KeyError, TypeError):
                    pass
                if time.monotonic() > deadline:
                    raise UnavailableError(f"{spec.name} did not join the DHT within {timeout:.0f}s")
                time.sleep(0.1)
            peer.close()

    def add(self, count: int, args: list[str] | None = None) -> tuple[Network, list[str]]:
        """Add ``count`` storage nodes that join through the running ones; start them."""
        new = self.add_storage_specs(count, list(args or []))
        charge_new_nodes(self)  # added nodes charge and admit like the others
        admit_new_nodes(self)
        new = [s for s in self.specs() if s.name in {n.name for n in new}]
        for spec in new:
            self.start_node(spec)
        self.wait_ready(new)
        self.wait_joined(new)
        net = self.write_network(self.known_ids())
        self._fund_nodes()
        return net, [s.name for s in new]

    def _fund_nodes(self) -> None:
        """On a charging or admitting devnet: bond the storage nodes (the pool's payees) and give each
        node's own account stake and money, which its repairer and drain pay and sign tickets with."""
        cfg = self.config()
        if cfg.get("charging"):
            register_nodes(self)
        if cfg.get("charging") or cfg.get("admission") == "ticket":
            sponsor_nodes(self)
        if cfg.get("devnet_uploader"):
            sponsor_uploader(self, self.uploader_path)

    def kill(self, name: str, wipe: bool = False) -> bool:
        """SIGKILL node ``name`` (a crash). Its data stays (and `up` restarts it) unless ``wipe``:
        then its data dir is deleted and it leaves the devnet for good."""
        spec = next((s for s in self.specs() if s.name == name), None)
        if spec is None:
            raise UsageError(f"no node named {name!r} in this devnet")
        killed = self.stop_node(spec, signal.SIGKILL, timeout=5.0)
        if wipe:
            shutil.rmtree(self.node_dir(spec), ignore_errors=True)
            self._save_specs([s for s in self.specs() if s.name != name])
        ids = self.known_ids()
        self.write_network(ids)
        return killed

    def known_ids(self) -> dict[str, bytes]:
        ids = {}
        for spec in self.specs():
            try:
                ids[spec.name] = bytes.fromhex(json.loads((self.node_dir(spec) / "node.json").read_text())["node_id"])
            except (OSError, ValueError, KeyError):
                pass
        return ids

    def up(
        self, nodes: int, roles: list[str], args: list[str], params: Params | None = None, charge: list[str] | None = None,
        validators: int = 1, admission: bool = True, relays: int = 0, tenants: Path | None = None,
    ) -> tuple[Network, list[str]]:
        """Start the devnet (creating ``nodes`` nodes if there is none). Returns (network, started).

        When creating: ``params`` are the ledger's genesis parameters; ``charge`` (`veil node run`
        payment options, e.g. ``["--price-per-gb", "0.1"]``) makes every storage node charge;
        ``admission`` (default) makes every storage node admit storage only by ticket, and makes
        the devnet's uploader key (staked, named in the network file) that `veil put` signs with
        when the user has no wallet; ``False``: nodes store for anyone; ``relays`` relays are
        added when creating (`veil devnet up` asks for 6); ``tenants``: the gateway's tenants file.
        """
        if not self.exists():
            if "storage" in roles:
                self.add_storage_specs(nodes, args)
            else:
                self.add_specs(nodes, roles, args)
            add_validators(self, validators, params=params)
            if relays:
                self.add_relay_specs(relays)
            if charge is not None:
                charge_storage_nodes(self, charge)
            admit_storage_nodes(self, "ticket" if admission else "open")
            if admission:  # `veil put` without a wallet signs with this staked key (cli/signer.py)
                write_uploader_key(self.uploader_path)
                self._save_specs(self.specs(), {"devnet_uploader": str(self.uploader_path.resolve())})
        if not any("gateway" in s.roles for s in self.specs()):
            self.add_gateway()
        if tenants is not None:
            self.set_gateway_tenants(tenants)
        specs = self.specs()
        started = []
        for spec in specs:
            if self.pid_of(spec) is None:
                self.start_node(spec)
                started.append(spec.name)
        ids = self.wait_ready(specs)
        self.wait_joined(specs)
        net = self.write_network(ids)
        self._fund_nodes()
        return net, started

    def set_gateway_tenants(self, path: Path) -> None:
        """Serve the devnet's gateway with this tenants file (kept in devnet.json: later `up`s keep it);
        a running gateway started without it is stopped here, so that `up` starts it with it."""
        specs = self.specs()
        for spec in specs:
            if "gateway" not in spec.roles:
                continue
            args = list(spec.args)
            if "--tenants" in args:
                i = args.index("--tenants")
                del args[i:i + 2]
            args += ["--tenants", str(path.resolve())]
            if args != spec.args:
                if self.pid_of(spec) is not None:
                    self.stop_node(spec)
                spec.args = args
        self._save_specs(specs)

    def add_gateway(self) -> NodeSpec:
        """Add a gateway node; its browser URL becomes the network's gateway (share links)."""
        port = free_port()
        args = ["--gateway-listen", f"127.0.0.1:{port}", "--network", str(self.static_network_path)]
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
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it exited between the last check and now
                continue
            _reap_or_zombie(pid)
        return list(pids)

    def down(self) -> list[str]:
        from veil.devnet import s3

        stopped = ["s3"] if s3.stop(self) else []  # the S3 endpoint first: it talks to the nodes
        return stopped + self.stop_nodes(self.specs())

    def status(self) -> list[dict[str, Any]]:
        net = load_network(self.static_network_path) if self.static_network_path.exists() else Network(nodes=[])
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
    write_json_atomic(path, value)
