"""Choosing a circuit's relays (docs/specs/circuits.md): pure, seeded by the caller's RNG.

Rules: no relay twice; the target node is never one of its own circuit's relays (a node that
is also a relay cannot be its own exit); relays the client has found bad are left out; the exit
is the least-used exit so far among the candidates, so the share streams of one download leave
through different exits while there are enough relays (one exit then sees one stream).

Imports from: veil.protocol.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence

from .circuit import Hop, TooFewRelays


def choose_path(relays: Sequence[Hop], target_id: bytes, hops: int, exit_use: Mapping[bytes, int],
                avoid: Collection[bytes] = (), rng: random.Random | None = None,
                prefer_exit: bytes | None = None) -> list[Hop]:  # fmt: skip
    """``hops`` distinct relays, entry first and exit last; TooFewRelays when there are not enough.

    ``prefer_exit``: the exit this target had before, kept while it is usable (one exit per node)."""
    r = rng or random.SystemRandom()
    seen: set[bytes] = set()
    usable: list[Hop] = []
    for h in relays:
        if h.node_id == target_id or h.node_id in seen:
            continue
        seen.add(h.node_id)
        usable.append(h)
    good = [h for h in usable if h.node_id not in avoid]
    if len(good) < hops:
        bad = len(usable) - len(good)
        extra = f" ({bad} more left out after failing)" if bad else ""
        raise TooFewRelays(f"need {hops} relay{'s' if hops != 1 else ''} for a circuit, found {len(good)}{extra}")
    kept = [h for h in good if h.node_id == prefer_exit]
    if kept:
        exit_hop = kept[0]
    else:
        least = min(exit_use.get(h.node_id, 0) for h in good)
        exit_hop = r.choice([h for h in good if exit_use.get(h.node_id, 0) == least])
    rest = [h for h in good if h is not exit_hop]
    return [*r.sample(rest, hops - 1), exit_hop]
