"""Announcing many provider records at once: one lookup per keyspace region, one request per node.

A node that stores many small files would otherwise run one lookup (≈ every node nearby
queried) and one ``add_provider`` request to each of the k nearest nodes *per storage index*:
tens of TLS exchanges per file. A batch instead

- groups its keys by their top ``region_bits`` bits: regions sized so that each holds about
  k/2 nodes (estimated from the distance of this node's k-th nearest contact; 0 bits, one
  region, while the network has no more than k nodes), and runs one lookup per region (for the
  region's first key);
- sends every record to the k nodes nearest *its own* key among the nodes that lookup found
  (every path's nearest, as a single provide does), grouped into ``add_providers`` requests of
  at most MAX_BATCH_RECORDS records / BATCH_BYTES bytes per node.

Pure functions; veil.dht.node runs them. Imports from: veil.dht.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from veil.dht.ids import ID_BITS, Contact, to_int
from veil.dht.messages import BATCH_BYTES, MAX_BATCH_RECORDS
from veil.dht.records import ProviderRecord


def region_bits(own_key: int, nearest: Sequence[Contact], k: int) -> int:
    """How many leading key bits one lookup's region spans, from this node's ``k`` nearest contacts."""
    if len(nearest) < k:
        return 0  # the network has no more than k nodes: one lookup finds all of them
    dk = max(c.key ^ own_key for c in nearest[:k])
    # N ≈ k · 2^ID_BITS / dk nodes; regions of 2^(ID_BITS - bits) keys hold ≈ k/2 of them.
    return max(0, min(ID_BITS, ID_BITS - dk.bit_length() + 1))


def group_by_region(keys: Iterable[bytes], bits: int) -> list[list[bytes]]:
    """``keys`` grouped by their top ``bits`` bits (in key order within a group)."""
    groups: dict[int, list[bytes]] = {}
    for key in sorted(set(keys)):
        groups.setdefault(to_int(key) >> (ID_BITS - bits) if bits else 0, []).append(key)
    return list(groups.values())


def assign(records: Sequence[ProviderRecord], candidates: Iterable[Contact], k: int) -> dict[int, tuple[Contact, list[bytes]]]:
    """contact key -> (contact, raw records it should hold): each record to the ``k`` candidates
    nearest its key."""
    cands = {c.key: c for c in candidates}
    out: dict[int, tuple[Contact, list[bytes]]] = {}
    for rec in records:
        target = to_int(rec.key)
        for ckey in sorted(cands, key=lambda ck: ck ^ target)[:k]:
            out.setdefault(ckey, (cands[ckey], []))[1].append(rec.raw)
    return out


def chunks(raws: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """``raws`` cut into ``add_providers`` requests that stay within the message bounds."""
    out: list[tuple[bytes, ...]] = []
    cur: list[bytes] = []
    size = 0
    for raw in raws:
        if cur and (len(cur) >= MAX_BATCH_RECORDS or size + len(raw) > BATCH_BYTES):
            out.append(tuple(cur))
            cur, size = [], 0
        cur.append(raw)
        size += len(raw) + 3
    if cur:
        out.append(tuple(cur))
    return out
