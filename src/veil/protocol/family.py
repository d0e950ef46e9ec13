"""Families of storage nodes, and placement orders that put one share per family first.

A family is a set of nodes whose failure or betrayal is likely to come together: nodes one
operator declared as theirs (``NodeInfo.operator``, from a network file the client trusts), and
nodes in one routable address block (veil.dht.subnet: an IPv4 /24, an IPv6 /32), the fallback
that costs an attacker something, since operator labels are free to make up. A node belongs to
every family it has a label for; two nodes sharing any label are in one family.

``spread(order)`` keeps the rendezvous order (protocol/placement.py) but moves every node whose
family already appears earlier behind all nodes of fresh families, so the first n nodes of the
result span as many families as the candidates allow, and where there is no choice (fewer
families than shares, as on a devnet on 127.0.0.1 without operator labels) the order is exactly
the rendezvous order. Everyone who knows the same candidates computes the same order.

``leader_order(si, nodes)`` is the order in which nodes are taken for a file's repair *leader*
(node/repair_role.py; docs/specs/repair.md, "The leader"): families first, then nodes. Each
family is ranked by rendezvous hash of the storage index and its *rank key* — the node's address
block where it has one, else its operator label, else its node id (a family of one) — and the
nodes of one family keep their placement order. A family is one ticket in that draw however many
nodes or shares it has, and ids ground to rank first for a file win nothing unless the family's
block (or, without one, its label) ranks first: capturing the leadership of a chosen file takes
owning the best-ranked address block among its holders'. Without labels (a devnet on 127.0.0.1)
every node is a family of one and the order is exactly the placement order.
Imports from: veil.crypto, veil.dht.subnet, veil.protocol.nodeinfo, veil.protocol.placement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from veil.dht.subnet import subnet_of
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.placement import placement_hash


def families(node: NodeInfo) -> frozenset[str]:
    """The family labels of a node: ``op:<operator>`` and ``net:<block>`` where known."""
    out = set()
    if node.operator:
        out.add("op:" + node.operator)
    net = subnet_of(node.host)
    if net is not None:
        out.add(net)
    return frozenset(out)


def spread(order: Sequence[NodeInfo], taken: Iterable[str] = ()) -> list[NodeInfo]:
    """``order`` with first each node whose families are all new (in order), then the rest (in order).

    ``taken``: families already holding a share (a repair), counted as used from the start."""
    used = set(taken)
    first: list[NodeInfo] = []
    rest: list[NodeInfo] = []
    for node in order:
        fam = families(node)
        if fam & used:
            rest.append(node)
        else:
            first.append(node)
            used |= fam
    return first + rest


def rank_key(node: NodeInfo) -> bytes:
    """What ranks a node's family in ``leader_order``: its address block, else its operator
    label, else its node id (the same hash as placement then: a family of one)."""
    net = subnet_of(node.host)
    if net is not None:
        return net.encode()
    if node.operator:
        return ("op:" + node.operator).encode()
    return node.node_id


def leader_order(si: bytes, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
    """``nodes`` ordered for repair leadership of ``si``: by family rank, then placement."""
    fam = {n.node_id: placement_hash(si, rank_key(n)) for n in nodes}
    return sorted(nodes, key=lambda n: (fam[n.node_id], placement_hash(si, n.node_id)))
