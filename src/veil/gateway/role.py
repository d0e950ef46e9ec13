"""The gateway role: the web gateway (veil.gateway) run inside a node process.

It serves plain HTTP for browsers on its own listener, apart from the node's pinned-TLS
port (browsers cannot pin node ids). Config (NodeConfig, from `veil node run`):
``gateway_listen`` (HOST:PORT, default 127.0.0.1:8080), ``tenants`` (path to a tenants
TOML file), ``network`` (path to the network file; default: the devnet's), ``k``/``n``,
``gateway_wallet`` (a wallet that pays nodes which charge for downloads; passphrase from
VEIL_PASSPHRASE in the node's environment), ``gateway_max_spend``, ``gateway_max_price``,
``gateway_visitor_budget`` and ``gateway_file_budget`` (gateway/budget.py), ``gateway_trusted_proxies``
(CIDRs whose Forwarded/X-Forwarded-For headers name the visitor, gateway/proxies.py). Its
requests are counted in the node's metrics registry (``ctx.metrics``).

It lives in ``gateway`` rather than ``node`` because layers run one way (node is below
gateway, tests/unit/test_layers.py): cli/node.py adds it to node/main.py's NODE_ROLES when it
builds the role table for `veil node run`; node never imports it.
"""

from __future__ import annotations

from typing import Any

from veil.errors import UsageError
from veil.format.textparse import parse_hostport
from veil.gateway.app import Gateway, GatewayConfig
from veil.gateway.pay import gateway_wallet
from veil.gateway.proxies import TrustedProxies
from veil.gateway.tenants import load_tenants
from veil.net.server import Router
from veil.node.context import NodeContext


class GatewayRole:
    name = "gateway"

    def __init__(self) -> None:
        self.gw: Gateway | None = None
        self.host = "127.0.0.1"
        self.port = 8080

    def attach(self, ctx: NodeContext, router: Router) -> None:
        cfg = ctx.config
        listen = cfg.gateway_listen or "127.0.0.1:8080"
        self.host, self.port = parse_hostport(listen, "gateway listen address", allow_zero=True)
        self.gw = Gateway(GatewayConfig(
            network_path=cfg.network,
            tenants=load_tenants(cfg.tenants),
            k=cfg.k, n=cfg.n,
            wallet=gateway_wallet(cfg.gateway_wallet, cfg.gateway_max_spend, cfg.gateway_max_price,
                                  cfg.gateway_visitor_budget, cfg.gateway_file_budget),
            trusted_proxies=TrustedProxies(cfg.gateway_trusted_proxies),
            metrics=ctx.metrics,
        ))

    def start(self) -> None:
        assert self.gw is not None
        try:
            self.gw.start(self.host, self.port)
        except OSError as e:
            raise UsageError(f"gateway cannot listen on {self.host}:{self.port}: {e.strerror or e}") from e

    def stop(self) -> None:
        if self.gw is not None:
            self.gw.stop()

    def status(self) -> dict[str, Any]:
        if self.gw is None:
            return {"url": None, "uploads": 0}
        return self.gw.status()
