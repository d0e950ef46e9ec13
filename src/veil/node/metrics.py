"""A process's Prometheus metrics (prometheus_client): one registry per node or gateway process.

What is counted where (docs/specs/operations.md, "Metrics"):
- every HTTP server of the process reports each answered request through ``Metrics.observer``
  (net/exchange.py ``Served``): requests by server, method, route pattern and status, latency
  histograms and bytes in and out per route. Routes, not paths, so the label set stays bounded;
- roles count their own events on ``Metrics`` (shares stored, share bytes served and received);
- everything that is a level rather than an event (bytes held, DHT table size, repair queue,
  earnings, relay circuits ...) is read from the roles' ``status()`` at scrape time by the
  collector of node/metrics_roles.py, so it can never drift from what ``GET /v1/node`` says.

A private ``CollectorRegistry`` rather than the library's global one, so several nodes in one
test process keep apart. Imports from: veil.net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from veil.net.server import Observer, Served

log = logging.getLogger("veil.metrics")
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the output and no dashboard here reads them

# Seconds: from sub-millisecond control calls to a minute-long block stream.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "unmatched"  # the route label of requests no route matched, or refused before parsing


class _Source(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._collect())
        except Exception:  # one broken source must not fail the whole scrape
            log.exception("a metrics source failed")
            return []


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.requests = Counter("veil_http_requests", "HTTP requests answered, by server, method, route and status.",
                                ["server", "method", "route", "status"], registry=r)
        self.latency = Histogram("veil_http_request_duration_seconds",
                                 "Time from dispatching a request to the last byte of its answer.",
                                 ["server", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.bytes_in = Counter("veil_http_request_body_bytes", "Request body bytes read, by server and route.",
                                ["server", "route"], registry=r)
        self.bytes_out = Counter("veil_http_response_bytes", "Response bytes written (head and body), by server and route.",
                                 ["server", "route"], registry=r)
        self.shares_stored = Counter("veil_storage_shares_stored", "Shares this node committed to disk.", registry=r)
        self.share_bytes_received = Counter("veil_storage_share_bytes_received",
                                            "Share bytes received in uploads (committed or not).", registry=r)
        self.share_bytes_served = Counter("veil_storage_share_bytes_served",
                                          "Share bytes (block ranges with proofs) sent to downloaders.", registry=r)
        self.shares_served = Counter("veil_storage_ranges_served", "Block-range reads answered.", registry=r)

    def observer(self, server: str, then: Observer | None = None) -> Observer:
        """An observer for one HTTP server of this process (``server``: node, gateway, metrics);
        ``then`` is called after it (the gateway's access log)."""

        # The labelled children per (method, route, status), looked up once: labels() takes a lock
        # and builds a tuple each time (halves the observer's CPU per request). Bounded: routes
        # and statuses are few, methods are the parser's.
        children: dict[tuple[str, str, int], tuple[Counter, Histogram, Counter, Counter]] = {}

        def observe(s: Served) -> None:
            key = (s.method, s.route, s.status)
            c = children.get(key)
            if c is None:
                route = s.route or UNMATCHED
                c = children[key] = (self.requests.labels(server, s.method or "-", route, str(s.status)),
                                     self.latency.labels(server, route), self.bytes_in.labels(server, route),
                                     self.bytes_out.labels(server, route))
            c[0].inc()
            c[1].observe(s.seconds)
            if s.bytes_in:
                c[2].inc(s.bytes_in)
            c[3].inc(s.bytes_out)
            if then is not None:
                then(s)

        return observe

    def add_source(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Metrics read at scrape time (levels: bytes held, queue lengths, table sizes)."""
        self.registry.register(_Source(collect))

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
