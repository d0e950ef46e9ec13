"""`veil devnet status --metrics`: read each node's Prometheus endpoint (its loopback metrics port, in node.json).

The numbers are the ones Prometheus would scrape, parsed with prometheus_client's own parser
and summed over labels per metric; ``SUMMARY`` names the few a devnet table shows.
Imports from: veil.devnet.specs, veil.errors.
"""

from __future__ import annotations

import http.client
import json
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from veil.devnet.specs import DevnetFiles, NodeSpec
from veil.errors import UnavailableError

MAX_SCRAPE = 4 << 20
# column -> the sample it sums (counters as exposed: with _total)
SUMMARY = {
    "stored": "veil_storage_used_bytes",
    "served": "veil_storage_share_bytes_served_total",
    "requests": "veil_http_requests_total",
    "contacts": "veil_dht_routing_table_contacts",
    "repair_queue": "veil_repair_queue_files",
    "earned": "veil_earnings_accepted_base_units_total",
}


def metrics_port(files: DevnetFiles, spec: NodeSpec) -> int | None:
    try:
        port = json.loads((files.node_dir(spec) / "node.json").read_text()).get("metrics_port")
    except (OSError, ValueError, AttributeError):
        return None
    return port if isinstance(port, int) else None


def scrape(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> dict[str, float]:
    """Every sample of ``http://host:port/metrics``, summed over labels, by sample name."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read(MAX_SCRAPE + 1)
        if resp.status != 200 or len(body) > MAX_SCRAPE:
            raise UnavailableError(f"metrics on port {port} answered {resp.status}")
    except OSError as e:
        raise UnavailableError(f"metrics on port {port} unreachable: {e}") from e
    finally:
        conn.close()
    sums: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            sums[sample.name] += float(sample.value)
    return dict(sums)


def summary(samples: dict[str, float]) -> dict[str, float]:
    return {col: samples[name] for col, name in SUMMARY.items() if name in samples}
