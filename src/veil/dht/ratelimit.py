"""Token buckets per peer, with the time passed in (no clock is read here).

A DHT node answers strangers, so every request costs the sender tokens: a peer flooding
lookups or records is refused once its bucket is empty, and the number of peers tracked is
bounded so the limiter itself cannot be flooded (the least recently active peer is forgotten).
Imports nothing from Veil.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class PeerRateLimiter:
    """One token bucket per peer key (an IP address, or a node id where the transport proves it)."""

    def __init__(self, rate: float, burst: float, max_peers: int = 10_000) -> None:
        if rate <= 0 or burst < 1 or max_peers < 1:
            raise ValueError("bad rate limit parameters")
        self.rate = rate
        self.burst = burst
        self.max_peers = max_peers
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, peer: str, now: float, cost: float = 1.0) -> bool:
        b = self._buckets.pop(peer, None)
        if b is None:
            b = TokenBucket.full(self.rate, self.burst, now)
            if len(self._buckets) >= self.max_peers:
                # Forget the least recently active peer: it starts again with a full bucket,
                # which costs an attacker as much as being a fresh peer.
                del self._buckets[next(iter(self._buckets))]
        self._buckets[peer] = b  # re-inserted last: dict order is recency order
        return b.take(now, cost)

    def __len__(self) -> int:
        return len(self._buckets)
