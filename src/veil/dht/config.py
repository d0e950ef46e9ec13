"""A DHT node's parameters (docs/specs/dht.md): the defaults stand for real networks.

Imports from: veil.crypto, veil.dht.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from veil.crypto.idpuzzle import DEFAULT_ID_BITS
from veil.dht.store import StoreLimits


@dataclass(frozen=True, slots=True)
class DhtConfig:
    k: int = 20
    alpha: int = 3
    paths: int = 3  # disjoint lookup paths; 1 is plain Kademlia
    record_ttl: int = 24 * 3600
    operator: str = ""  # the operator label this node declares in its signed node record ("op")
    republish_interval: float = 12 * 3600
    refresh_interval: float = 3600
    refresh_per_tick: int = 2
    region_ttl: float = 30.0  # seconds a region's nearest nodes are reused (veil.dht.regions)
    expire_interval: float = 60
    request_rate: float = 50.0  # requests per second per peer
    request_burst: float = 500.0
    store_rate: float = 5.0  # ADD_PROVIDER / STORE_NODE per second per peer
    store_burst: float = 200.0
    max_peers_tracked: int = 10_000
    max_verify_inflight: int = 64
    max_failures: int = 2
    id_bits: int = DEFAULT_ID_BITS  # the network's id puzzle (veil.crypto.idpuzzle); 0 accepts any id
    store_limits: StoreLimits = field(default_factory=StoreLimits)
