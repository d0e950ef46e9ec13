"""The set of nodes a client talks to, and where the client finds it.

A network file (JSON) lists nodes by address and node id, or only ``bootstrap`` addresses
(HOST:PORT of any DHT nodes); `veil devnet up` writes one at
``$VEIL_HOME/devnet/network.json`` and the client finds it there by itself. ``--network``
or ``VEIL_NETWORK`` point elsewhere.

Storage requests go through ``Network.transport`` (protocol/transport.py): pinned TLS by
default, the in-memory grid of ``veil.testing.grid`` in unit tests.

A ``Network`` answers the placement questions the same way either way:
``storage_nodes_for(si)`` is the candidate storage nodes in rendezvous order for a storage
index, ``providers_of(si)`` the nodes that announced (signed provider records) that they hold
its shares. With a static list the candidates are every listed storage node and there are no
provider records to ask; when the file lists no storage nodes but bootstrap addresses, the
candidates are the DHT's ``find_node(si)`` answer (the 20 nodes nearest the index, ranked by
the placement hash; remembered per keyspace region for a short while, veil.dht.regions, so many
files in a row do not each cost a lookup) and providers come from ``find_providers(si)``.

Either way a candidate whose node id does not solve the network's id puzzle (``id_bits``, from
the file; a DHT network defaults to veil.crypto.idpuzzle.DEFAULT_ID_BITS, a static list to 0:
its author chose those nodes) is never a candidate nor a provider, and the candidates are
spread over families (protocol/family.py: one share per operator or address block first).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from veil.crypto.idpuzzle import DEFAULT_ID_BITS, check_bits, valid_id
from veil.crypto.sign import SigningKey
from veil.dht.node import DhtConfig
from veil.errors import UnavailableError, UsageError
from veil.net.circuit_transport import CircuitTransport
from veil.net.client import PeerClient
from veil.net.dht_driver import DhtDriver, parse_address
from veil.net.storage_transport import TlsTransport
from veil.protocol.circuit import DEFAULT_HOPS, Hop
from veil.protocol.family import spread
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.placement import dht_key, permuted, relay_directory_key
from veil.protocol.transport import StorageTransport

from .tickets import Tickets, read_uploader_key

__all__ = ["Network", "NodeInfo", "load_network", "network_from_json", "node_from_address"]

DEFAULT_GATEWAY = ""  # none: a share link needs a gateway someone configured (client/config.py)


def veil_home() -> Path:
    return Path(os.environ.get("VEIL_HOME") or Path.home() / ".veil")


def default_network_path() -> Path:
    env = os.environ.get("VEIL_NETWORK")
    return Path(env) if env else veil_home() / "devnet" / "network.json"


def node_from_address(address: str, nid: bytes) -> NodeInfo:
    host, port = parse_address(address)
    return NodeInfo(host, port, nid)


@dataclass
class Network:
    nodes: list[NodeInfo]
    gateway: str = DEFAULT_GATEWAY
    extra: dict[str, Any] = field(default_factory=dict)
    bootstrap: list[str] = field(default_factory=list)
    dht: DhtDriver | None = field(default=None, repr=False)  # given (a node's own) or made on first use
    _own_dht: bool = field(default=False, repr=False)
    _clients: dict[bytes, PeerClient] = field(default_factory=dict, repr=False)
    # Every storage-node request of the data path goes through this one seam.
    transport: StorageTransport = field(default_factory=TlsTransport, repr=False)
    id_bits: int = 0  # the network's node-id puzzle; candidates whose ids do not solve it are dropped
    # Who signs storage tickets for nodes that admit storage by ticket (client/tickets.py).
    tickets: Tickets | None = field(default=None, repr=False)
    relay_ports: dict[bytes, int] = field(default_factory=dict)  # node id -> its relay listener's port
    anon: CircuitTransport | None = field(default=None, repr=False)  # set by use_circuits

    def relays(self) -> list[Hop]:
        """The relays the network file lists (nodes with a ``relay_port``), as circuit hops; with
        none listed and DHT discovery, the relays in the DHT's relay directory (signed records)."""
        listed = [Hop(n.host, self.relay_ports[n.node_id], n.node_id, n.name)
                  for n in self.nodes if n.node_id in self.relay_ports]  # fmt: skip
        if listed or self.discovery != "dht":
            return listed
        # Asked directly, before any circuit exists: it tells the DHT nodes asked only that this
        # address looks for relays (as a Tor client fetches the directory), never which file.
        drv = DhtDriver(SigningKey.generate(), "client:0", config=DhtConfig(id_bits=self.id_bits), announce=False)
        try:
            drv.join(self.bootstrap)
            recs = drv.find_providers(relay_directory_key(), want=20)
        finally:
            drv.stop()
        out = []
        for r in recs:
            host, port = parse_address(r.address)
            out.append(Hop(host, port, r.provider_id))
        return out

    def use_circuits(self, hops: int = DEFAULT_HOPS, source: str | None = None) -> CircuitTransport:
        """Send every storage request (and, with DHT discovery, every DHT lookup) over onion
        circuits of ``hops`` relays; TooFewRelays at once when the network has too few."""
        t = CircuitTransport(self.relays(), hops, source=source)
        t.check_relays()
        self.transport.close()
        self.transport = self.anon = t
        return t

    def warnings(self) -> list[str]:
        """What the transport noticed on the way (relays named after failing)."""
        return list(self.anon.warnings) if self.anon is not None else []

    def storage_nodes(self) -> list[NodeInfo]:
        """The storage nodes the network file lists (none when discovery goes through the DHT)."""
        return [n for n in self.nodes if "storage" in n.roles]

    @property
    def discovery(self) -> str:
        """``static`` (the listed nodes) or ``dht`` (no storage nodes listed; ask the DHT)."""
        return "static" if self.storage_nodes() or (self.dht is None and not self.bootstrap) else "dht"

    def _driver(self) -> DhtDriver:
        if self.dht is None:
            # A client looks up and never serves (announce=False): nobody adds it to a table.
            dial = self.anon.dial_for if self.anon is not None else None
            drv = DhtDriver(SigningKey.generate(), "client:0", config=DhtConfig(id_bits=self.id_bits), announce=False,
                            dial=dial)
            try:
                drv.join(self.bootstrap)
            except BaseException:
                drv.stop()
                raise
            self.dht, self._own_dht = drv, True
        return self.dht

    def storage_nodes_for(self, si: bytes) -> list[NodeInfo]:
        """Candidate storage nodes for storage index ``si``, in rendezvous (placement) order."""
        if self.discovery == "static":
            nodes = self.storage_nodes()
        else:
            drv = self._driver()
            closest = drv.closest_nodes(dht_key(si))  # one lookup per keyspace region per region_ttl
            nodes = [node_from_address(c.address, c.node_id) for c in closest if c.node_id != drv.node.node_id]
            if drv.node.announce:  # a node's own Network: it is a candidate too
                nodes.append(node_from_address(drv.node.contact.address, drv.node.node_id))
            nodes = self.labelled(nodes)
        if not nodes:
            raise UnavailableError(
                "the network lists no storage nodes" if self.discovery == "static"
                else "the DHT knows no storage nodes (are the bootstrap nodes joined?)"
            )
        nodes = [n for n in nodes if valid_id(n.node_id, self.id_bits)]
        if not nodes:
            raise UnavailableError(f"no candidate node solves the network's {self.id_bits}-bit id puzzle")
        return spread([nodes[i] for i in permuted(si, [n.node_id for n in nodes])])

    def labelled(self, nodes: list[NodeInfo]) -> list[NodeInfo]:
        """``nodes`` with their operator labels: the one this network file pins for a node, else
        the one the node declares in its signed node record, where the DHT driver holds it."""
        pins = {n.node_id: n.operator for n in self.nodes if n.operator}
        drv = self.dht
        out = []
        for n in nodes:
            label = n.operator or pins.get(n.node_id) or (drv.operator_of(n.node_id) if drv is not None else "")
            out.append(n if label == n.operator else replace(n, operator=label))
        return out

    def providers_of(self, si: bytes, want: int = 20) -> list[tuple[NodeInfo, tuple[int, ...]]]:
        """Nodes whose signed provider records say they hold shares of ``si`` (DHT mode only).

        A record is a claim, not proof: callers ask the node itself and verify what it serves."""
        if self.discovery == "static":
            return []
        recs = self._driver().find_providers(dht_key(si), want=want)
        return [(node_from_address(r.address, r.provider_id), r.shares) for r in recs
                if valid_id(r.provider_id, self.id_bits)]

    def client(self, node: NodeInfo, timeout: float = 30.0) -> PeerClient:
        """A pinned client for a node's other APIs (payment terms, leases); storage requests
        go through ``transport``."""
        c = self._clients.get(node.node_id)
        if c is None:
            c = self._clients[node.node_id] = PeerClient(node.host, node.port, node.node_id, timeout)
        return c

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        self.transport.close()
        if self._own_dht and self.dht is not None:
            self.dht.stop()
            self.dht, self._own_dht = None, False

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "gateway": self.gateway,
            "nodes": [
                {"name": n.name, "host": n.host, "port": n.port, "node_id": n.node_id.hex(), "roles": list(n.roles),
                 **({"relay_port": self.relay_ports[n.node_id]} if n.node_id in self.relay_ports else {}),
                 **({"operator": n.operator} if n.operator else {})}
                for n in self.nodes
            ],
            **self.extra,
        }
        if self.id_bits:
            value["id_bits"] = self.id_bits
        if self.bootstrap:
            value["bootstrap"] = list(self.bootstrap)
        return value


def network_from_json(value: Any, where: str = "network file") -> Network:
    try:
        nodes = [
            NodeInfo(
                host=str(n["host"]), port=int(n["port"]), node_id=bytes.fromhex(n["node_id"]),
                name=str(n.get("name", "")), roles=tuple(n.get("roles", ["storage"])),
                operator=str(n.get("operator", "")),
            )
            for n in value.get("nodes", [])
        ]
        relay_ports = {bytes.fromhex(n["node_id"]): int(n["relay_port"])
                       for n in value.get("nodes", []) if n.get("relay_port")}  # fmt: skip
        bootstrap = [str(a) for a in value.get("bootstrap", [])]
        for a in bootstrap:
            parse_address(a)
        static = any("storage" in n.roles for n in nodes)
        bits = value.get("id_bits", 0 if static else DEFAULT_ID_BITS)
        if not isinstance(bits, int) or isinstance(bits, bool):
            raise ValueError(f"id_bits must be an integer, not {bits!r}")
        check_bits(bits)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{where} is malformed: {e}") from e
    extra = {k: v for k, v in value.items() if k not in ("nodes", "gateway", "bootstrap", "id_bits")}
    return Network(nodes=nodes, gateway=str(value.get("gateway") or DEFAULT_GATEWAY), extra=extra, bootstrap=bootstrap,
                   relay_ports=relay_ports, id_bits=bits)


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
    uploader = net.extra.get("devnet_uploader")
    if isinstance(uploader, str) and uploader:  # a devnet's staked key signs storage tickets
        key_file = Path(uploader)  # (the CLI puts the user's wallet first: cli/signer.py)
        net.tickets = Tickets(lambda: read_uploader_key(key_file))
    return net
