"""Find a file: ask nodes (in rendezvous order, in parallel) which shares they hold, and get
a manifest that matches the cap's manifest hash.

The nodes asked are the network's candidates for the storage index (every listed node, or
the DHT's nearest nodes) followed by the nodes whose provider records name the index: shares
repaired or handed over after churn may sit outside the first candidates. What a node says
it holds is only a claim; the blocks it serves are verified against the manifest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from veil.errors import IntegrityError, NotFoundError, UnavailableError, VeilError
from veil.format.fields import require_map
from veil.format.manifest import Manifest, parse_manifest

from .network import Network, NodeInfo

LOCATE_TIMEOUT = 10.0


@dataclass
class Located:
    manifest: Manifest
    holders: dict[int, list[NodeInfo]]  # share number -> nodes that say they hold it
    asked: int
    unreachable: list[str] = field(default_factory=list)
    bad_manifest: list[str] = field(default_factory=list)

    def share_count(self) -> int:
        return len(self.holders)


def locate(net: Network, si: bytes, manifest_hash: bytes) -> Located:
    order = net.storage_nodes_for(si)
    seen = {n.node_id for n in order}
    for node, _ in net.providers_of(si):
        if node.node_id not in seen:
            seen.add(node.node_id)
            order.append(node)

    def ask(node: NodeInfo) -> tuple[NodeInfo, list[int], bytes | None, str | None]:
        try:
            v = net.client(node).call("GET", f"/v1/shares/{si.hex()}")
            m = require_map(v, "share list", {"shares", "manifest"})
            shares = m.get("shares")
            man = m.get("manifest")
            if not isinstance(shares, list) or not all(isinstance(s, int) and 0 <= s < 255 for s in shares):
                raise IntegrityError("malformed share list")
            if man is not None and not isinstance(man, bytes):
                raise IntegrityError("malformed manifest field")
            return node, shares, man, None
        except VeilError as e:
            return node, [], None, str(e)

    holders: dict[int, list[NodeInfo]] = {}
    manifest: Manifest | None = None
    unreachable: list[str] = []
    bad: list[str] = []
    with ThreadPoolExecutor(max_workers=min(16, len(order))) as ex:
        for node, shares, man, err in ex.map(ask, order):
            if err is not None:
                unreachable.append(err)
                continue
            for s in shares:
                holders.setdefault(s, []).append(node)
            if man is not None and manifest is None:
                try:
                    manifest = parse_manifest(man, manifest_hash, si)
                except IntegrityError as e:
                    bad.append(f"{node.label}: {e}")
    if manifest is None:
        if bad:
            raise IntegrityError(
                "the nodes' manifests for this storage index do not match the cap: " + "; ".join(bad[:3])
            )
        if unreachable and len(unreachable) == len(order):
            raise UnavailableError(f"none of the {len(order)} nodes could be reached: {unreachable[0]}")
        raise NotFoundError(
            f"no node has this file (asked {len(order)} nodes"
            + (f", {len(unreachable)} unreachable" if unreachable else "")
            + ")"
        )
    holders = {s: v for s, v in holders.items() if s < manifest.n}
    return Located(manifest, holders, len(order), unreachable, bad)
