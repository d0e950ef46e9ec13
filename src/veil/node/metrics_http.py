"""The metrics listener: plain HTTP on its own address, ``GET /metrics`` and ``GET /healthz``.

Apart from the node's port because that port speaks TLS pinned by node id, which Prometheus
and load balancers cannot check, and because traffic counts are not for everyone: the
listener is off unless the operator names an address (``--metrics-listen``), and an address
other than loopback needs ``--metrics-public`` as well (docs/specs/operations.md). It runs on
the same hardened server as everything else (veil.net.server), with a small worker pool.

``health()`` returns (healthy, body); ``/healthz`` answers 200 or 503 with that body as JSON.
Imports from: veil.net, veil.node.metrics.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

from veil.errors import UsageError
from veil.net.server import HTTPSServer, Limits, Request, Response, Router, serve
from veil.node.metrics import Metrics

Health = Callable[[], tuple[bool, dict[str, Any]]]
LIMITS = Limits(workers=2, workers_per_ip=2, queue=16, max_connections=64, max_per_ip=32)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_metrics_address(host: str, public: bool, option: str = "--metrics-listen") -> None:
    """Refuse a non-loopback metrics address unless the operator said it is meant to be reachable."""
    if not public and not is_loopback(host):
        raise UsageError(f"{option} {host}: metrics on a non-loopback address need --metrics-public "
                         "(they show traffic volumes; prefer 127.0.0.1 and scrape through a tunnel or proxy)")


def json_body(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(value).encode(), content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def health_response(health: Health) -> Response:
    ok, body = health()
    return json_body(body, 200 if ok else 503)


class MetricsListener:
    def __init__(self, metrics: Metrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health
        self.server: HTTPSServer | None = None
        self.router = Router()
        self.router.add("GET", "/metrics", self._metrics)
        self.router.add("GET", "/healthz", lambda req: health_response(self.health))

    def _metrics(self, req: Request) -> Response:
        body, ctype = self.metrics.render()
        return Response(body=body, content_type=ctype, headers={"Cache-Control": "no-store"})

    def start(self, host: str, port: int) -> None:
        self.server = serve((host, port), self.router, None, limits=LIMITS,
                            observer=self.metrics.observer("metrics"))

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        assert self.server is not None
        host = str(self.server.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
