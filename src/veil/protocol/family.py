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
Imports from: veil.dht.subnet, veil.protocol.nodeinfo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from veil.dht.subnet import subnet_of
from veil.protocol.nodeinfo import NodeInfo


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
