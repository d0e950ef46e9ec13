"""The network as a node's own roles see it (repairer, drain): through the node's DHT driver
when it runs the ``dht`` role, else through the network file named by config ``network``.

Imports from: veil.errors, veil.client, veil.node.context.
"""

from __future__ import annotations

from veil.client.network import Network, load_network
from veil.errors import UsageError
from veil.node.context import NodeContext


def node_network(ctx: NodeContext) -> Network:
    dht = ctx.services.dht
    if dht is not None:
        return Network(nodes=[], dht=dht, id_bits=ctx.config.id_bits)
    if ctx.config.network is not None:
        return load_network(ctx.config.network)
    raise UsageError("this node needs the dht role (or --network FILE) to find other storage nodes")
