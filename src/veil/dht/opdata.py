"""What a DHT node is configured with and what it hands its driver: ``DhtConfig``, ``Send``
(a request to send) and ``OpDone`` (a finished operation). Re-exported by veil.dht.node.
Imports from: veil.dht.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veil.dht.ids import Contact
from veil.dht.messages import Request
from veil.dht.records import NodeRecord, ProviderRecord
from veil.dht.store import StoreLimits


@dataclass(frozen=True, slots=True)
class DhtConfig:
    k: int = 20
    alpha: int = 3
    paths: int = 3  # disjoint lookup paths; 1 is plain Kademlia
    record_ttl: int = 24 * 3600
    republish_interval: float = 12 * 3600
    refresh_interval: float = 3600
    refresh_per_tick: int = 2
    region_ttl: float = 30.0  # seconds a region's nearest nodes are reused by provide batches
    expire_interval: float = 60
    request_rate: float = 50.0  # requests per second per peer
    request_burst: float = 500.0
    store_rate: float = 5.0  # ADD_PROVIDER / STORE_NODE per second per peer
    store_burst: float = 200.0
    max_peers_tracked: int = 10_000
    max_verify_inflight: int = 64
    max_failures: int = 2
    store_limits: StoreLimits = field(default_factory=StoreLimits)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``to`` (pinning its node id) and report back under ``request_id``."""

    request_id: int
    to: Contact
    message: Request


@dataclass(frozen=True, slots=True)
class OpDone:
    """A lookup-based operation finished.

    ``kind`` is join, find_node, find_value, find_providers, provide, publish_node or refresh.
    ``messages`` counts the lookup's requests (timeouts included); ``stored`` how many nodes
    accepted the record for provide / publish_node.
    """

    op_id: int
    kind: str
    target: bytes
    closest: tuple[Contact, ...]
    paths: tuple[tuple[Contact, ...], ...]
    providers: tuple[ProviderRecord, ...]
    record: NodeRecord | None
    hops: int
    messages: int
    failures: int
    stored: int = 0
    started: float = 0.0
    finished: float = 0.0
