"""The network as a node's own roles see it (repairer, drain): through the node's DHT driver
when it runs the ``dht`` role, else through the network file named by config ``network``.

Imports from: veil.errors, veil.client, veil.node.context.
"""

from __future__ import annotations

from veil.client.network import Network, load_network
from veil.client.tickets import Tickets
from veil.errors import UsageError
from veil.node.context import NodeContext


def node_network(ctx: NodeContext) -> Network:
    """The node's view of the network. Shares it puts on nodes that admit storage by ticket
    (repair, drain) are asked for with tickets signed by the node's own key: its account's
    storage quota pays for them (payments.md, "Storage admission")."""
    dht = ctx.services.dht
    if dht is not None:
        net = Network(nodes=[], dht=dht, id_bits=ctx.config.id_bits)
    elif ctx.config.network is not None:
        net = load_network(ctx.config.network)
    else:
        raise UsageError("this node needs the dht role (or --network FILE) to find other storage nodes")
    key = ctx.key
    net.tickets = Tickets(lambda: key)
    return net
