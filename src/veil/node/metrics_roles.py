"""The levels a node exposes as metrics, read from its roles' ``status()`` at scrape time.

One table maps (role, status key) to a metric, so ``/metrics`` and ``GET /v1/node`` can never
disagree; a key a role does not report is simply left out. Counters here are totals the roles
keep themselves (repairs done, cheques accepted); gauges are levels (bytes held, table sizes,
the repair queue). Imports nothing from Veil.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

# (role, key) -> (metric name, help)
GAUGES: dict[tuple[str, str], tuple[str, str]] = {
    ("storage", "used"): ("veil_storage_used_bytes", "Bytes of shares held on disk."),
    ("storage", "capacity"): ("veil_storage_capacity_bytes", "Most bytes of shares kept (0: the disk's free space)."),
    ("storage", "disk_free"): ("veil_storage_disk_free_bytes", "Free bytes on the disk holding the shares."),
    ("storage", "shares"): ("veil_storage_shares", "Shares held."),
    ("storage", "uploads_open"): ("veil_storage_upload_sessions", "Upload sessions open."),
    ("mutable", "slots"): ("veil_mutable_slots", "Folder slots held."),
    ("mutable", "bytes"): ("veil_mutable_bytes", "Bytes of folder versions held."),
    ("dht", "contacts"): ("veil_dht_routing_table_contacts", "Contacts in the DHT routing table."),
    ("dht", "records"): ("veil_dht_records", "DHT records stored for others."),
    ("dht", "joined"): ("veil_dht_joined", "1 once the node has joined the DHT."),
    ("repairer", "queue"): ("veil_repair_queue_files", "Files due for a check now (new, triggered by a departure, retried or swept)."),
    ("repairer", "files"): ("veil_repair_files_tracked", "Files the repairer watches (every storage index held)."),
    ("repairer", "leading"): ("veil_repair_files_leading", "Files whose repair this node leads."),
    ("relay", "open"): ("veil_relay_circuits_open", "Onion circuits open through this relay."),
    ("validator", "height"): ("veil_ledger_height", "Height of the ledger's last block."),
    ("gateway", "uploads"): ("veil_gateway_uploads_open", "Browser upload sessions open."),
}
COUNTERS: dict[tuple[str, str], tuple[str, str]] = {
    ("repairer", "checked"): ("veil_repair_checks", "Files checked by the repairer."),
    ("repairer", "repaired_files"): ("veil_repair_files_repaired", "Files repaired."),
    ("repairer", "repaired_shares"): ("veil_repair_shares_created", "Shares re-created by repairs."),
    ("repairer", "spent"): ("veil_repair_spent_base_units", "Base units paid to charging nodes for repair reads."),
    ("payments", "served_free"): ("veil_payments_served_free_bytes", "Bytes served within downloaders' free allowance."),
    ("payments", "served_paid"): ("veil_payments_served_paid_bytes", "Bytes served against paid cheques."),
    ("payments", "accepted"): ("veil_earnings_accepted_base_units",
                               "Earnings: base units in cheques accepted for downloads served (settled or not)."),
    ("payments", "settles"): ("veil_earnings_settlements", "Channel settlements this node submitted to the ledger."),
    ("relay", "circuits"): ("veil_relay_circuits", "Onion circuits carried."),
    ("relay", "refused"): ("veil_relay_circuits_refused", "Onion circuits refused (over the bounds)."),
    ("relay", "bytes_forwarded"): ("veil_relay_forwarded_bytes", "Bytes forwarded on circuits."),
    ("gateway", "spent"): ("veil_gateway_spent_base_units", "Base units the gateway's wallet paid for visitors' downloads."),
}


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    return None


def role_metrics(statuses: Callable[[], Mapping[str, Mapping[str, Any]]]) -> Callable[[], Iterable[Metric]]:
    """A metrics source (Metrics.add_source) over ``statuses()``: role name -> its status dict."""

    def collect() -> Iterable[Metric]:
        st = statuses()
        for table, family in ((GAUGES, GaugeMetricFamily), (COUNTERS, CounterMetricFamily)):
            for (role, key), (name, doc) in table.items():
                value = _number(st.get(role, {}).get(key))
                if value is not None:
                    yield family(name, doc, value=value)

    return collect
