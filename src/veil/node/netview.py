"""The network as a node's own roles see it (repairer, drain): through the node's DHT driver
when it runs the ``dht`` role, else through the network file named by config ``network``.

Imports from: veil.errors, veil.client, veil.node.context.
"""

from __future__ import annotations

from pathlib import Path

from veil.client.network import Network, load_network
from veil.errors import UsageError
from veil.node.context import NodeContext


def node_network(ctx: NodeContext) -> Network:
    dht = ctx.services.get("dht")
    if dht is not None:
        return Network(nodes=[], dht=dht)
    path = ctx.config.get("network")
    if path:
        return load_network(Path(str(path)))
    raise UsageError("this node needs the dht role (or --network FILE) to find other storage nodes")
