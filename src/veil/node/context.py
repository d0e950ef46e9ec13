"""What every role of a node can see: its data dir, identity, address, configuration and services.

``config`` is the node's typed configuration (NodeConfig, built by `veil node run`); each role
reads its own fields. ``metrics`` is the process's Prometheus registry (node/metrics.py). ``services`` is where a role offers an object to the node's other roles
once it has attached or started (``dht``: the DhtDriver, ``store``: the ShareStore, ``payments``:
the payment gate, ``draining``: whether the storage role is draining); a consumer looks it up
when it needs it, since roles start in the order they were named, and copes with ``None``.

Imports from: veil.crypto, veil.net, veil.storage, veil.node.metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from veil.crypto.idpuzzle import DEFAULT_ID_BITS
from veil.crypto.sign import SigningKey
from veil.net.dht_driver import DhtDriver
from veil.net.server import Request, Response, Router
from veil.net.wire import Limits
from veil.node.metrics import Metrics
from veil.storage.store import ShareStore


@dataclass(frozen=True)
class NodeConfig:
    """Every role's settings, from the options of `veil node run`; ``None`` means the default."""

    # identity
    operator: str | None = None  # the operator/family label declared in the node's signed DHT record
    # storage
    capacity: int | None = None  # most bytes of shares to keep; None: the disk's free space
    storage_admission: str = "ticket"  # storage tickets within quota (needs ``validator``), or "open"
    account_quota: int | None = None  # most bytes one account keeps here; None: capacity / 4, else the ledger's
    # mutable (folders)
    folder_versions: int | None = None  # versions kept per folder slot; None: storage/mutable.py's default
    # gateway (and the repairer/drain's view of the network without the dht role)
    network: Path | None = None  # the network file
    gateway_listen: str | None = None  # HOST:PORT for browsers; None: 127.0.0.1:8080
    tenants: Path | None = None
    gateway_wallet: Path | None = None
    gateway_max_spend: str | None = None  # VEIL, as the user wrote it
    gateway_max_price: str | None = None  # VEIL per GB; None: any price (gateway/budget.py)
    gateway_visitor_budget: str | None = None  # VEIL per visitor per day; None: max-spend / 100
    gateway_file_budget: str | None = None  # VEIL per file per day; None: max-spend / 10
    gateway_trusted_proxies: tuple[str, ...] = ()  # CIDRs of reverse proxies whose Forwarded headers count
    k: int = 3
    n: int = 10
    # dht
    bootstrap: tuple[str, ...] = ()  # HOST:PORT of nodes to join through; none for a network's first node
    dht_advertise: str | None = None  # HOST:PORT others should use; None: the listen address
    dht_peer_rate: float | None = None  # requests per second from one peer address
    id_bits: int = DEFAULT_ID_BITS  # the network's node-id puzzle (identity, DHT, placement)
    # repairer
    repair_interval: float | None = None
    repair_threshold: str | None = None  # happy, n, or a count
    repair_sweep_rate: float | None = None  # background file visits per minute
    repair_wallet: Path | None = None  # pays charging nodes for the blocks the repairer reads
    repair_max_spend: str | None = None  # VEIL, as the user wrote it
    # payments
    price_per_gb: int | None = None  # base units per GB served; set turns the gate on
    lease_price_per_gb_day: int | None = None
    free_credit: int | None = None  # unsettled free-tier bytes per payer
    validator: str | None = None  # NODEID@HOST:PORT[,...] of the ledger settling cheques
    min_channel_life: int | None = None
    # validator
    validators: tuple[str, ...] = ()  # NODEID@HOST:PORT of cluster members to join through
    election: tuple[float, float] = (0.5, 1.0)  # raft election timeout range, seconds
    # relay
    relay_port: int = 0  # the relay listener's port; 0: any free one (in node.json and GET /v1/node)
    relay_max_circuits: int | None = None  # circuits open at once; None: 256
    relay_max_per_ip: int | None = None  # circuits open from one predecessor address; None: 32
    relay_announce: tuple[str, ...] = ()  # HOST:PORT of DHT nodes to announce this relay through
    relay_rate: int | None = None  # bytes per second per circuit; None: unbounded
    # transport
    http_limits: Limits | None = None  # the HTTP server's bounds (--http-limit); None: wire.Limits()
    # operations
    metrics_listen: str | None = None  # HOST:PORT of the plain-HTTP /metrics + /healthz listener; None: off


class Charger(Protocol):
    """What the storage role needs of the payments role: a refusal to send instead of the
    blocks (402, or 400 for a malformed cheque), or None once the request is paid for. ``mhash``
    names the slot being read: the payout is the one in that slot's manifest."""

    def charge(self, req: Request, si: bytes, nbytes: int, mhash: bytes) -> Response | None: ...


@dataclass
class Services:
    dht: DhtDriver | None = None
    store: ShareStore | None = None
    payments: Charger | None = None
    draining: Callable[[], bool] | None = None


@dataclass
class NodeContext:
    data_dir: Path
    key: SigningKey
    host: str
    port: int
    config: NodeConfig = field(default_factory=NodeConfig)
    services: Services = field(default_factory=Services)
    metrics: Metrics = field(default_factory=Metrics)  # the process's registry: roles count their events on it

    @property
    def node_id(self) -> bytes:
        from veil.crypto.sign import node_id

        return node_id(self.key.public_key)


class Role(Protocol):
    name: str

    def attach(self, ctx: NodeContext, router: Router) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...
