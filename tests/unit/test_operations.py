"""Pure parts of operations: trusted-proxy client addresses, sanitised log lines, metrics of role status."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from veil.cli.logopts import SafeFormatter
from veil.errors import UsageError
from veil.gateway.proxies import TrustedProxies, forwarded_chain
from veil.node.metrics import Metrics
from veil.node.metrics_http import check_metrics_address, is_loopback
from veil.node.metrics_roles import role_metrics

TRUST = TrustedProxies(["127.0.0.1/32", "10.0.0.0/8", "::1/128"])


def test_untrusted_peer_headers_are_ignored() -> None:
    assert TRUST.client("198.51.100.9", ["for=203.0.113.7"], ["203.0.113.7"]) == "198.51.100.9"
    assert TrustedProxies().client("127.0.0.1", [], ["203.0.113.7"]) == "127.0.0.1"


def test_trusted_peer_names_the_visitor() -> None:
    assert TRUST.client("127.0.0.1", [], ["203.0.113.7"]) == "203.0.113.7"
    assert TRUST.client("::1", [], ["203.0.113.7"]) == "203.0.113.7"
    assert TRUST.client("::ffff:127.0.0.1", [], ["203.0.113.7"]) == "203.0.113.7"


def test_walk_stops_at_the_first_untrusted_hop_from_the_right() -> None:
    # the visitor forged "1.2.3.4" before reaching the first proxy: the proxy's view wins
    assert TRUST.client("127.0.0.1", [], ["1.2.3.4, 203.0.113.7, 10.1.2.3"]) == "203.0.113.7"
    assert TRUST.client("127.0.0.1", [], ["1.2.3.4", "203.0.113.7"]) == "203.0.113.7"  # several headers, in order
    assert TRUST.client("127.0.0.1", [], ["10.1.2.3"]) == "10.1.2.3"  # only proxies: the oldest one


def test_garbage_or_opaque_entries_fall_back_to_the_nearest_proxy() -> None:
    assert TRUST.client("127.0.0.1", [], ["203.0.113.7, nonsense"]) == "127.0.0.1"
    assert TRUST.client("127.0.0.1", [], ["203.0.113.7, 10.0.0.5, unknown"]) == "127.0.0.1"
    assert TRUST.client("127.0.0.1", ['for=_hidden, for="10.0.0.5"'], []) == "10.0.0.5"
    assert TRUST.client("127.0.0.1", [], []) == "127.0.0.1"


def test_forwarded_header_wins_and_is_parsed_per_rfc7239() -> None:
    fwd = ['for=192.0.2.60;proto=http;by=203.0.113.43', 'For="[2001:db8:cafe::17]:4711", for=10.0.0.1:8080']
    assert forwarded_chain(fwd) == ["192.0.2.60", "2001:db8:cafe::17", "10.0.0.1"]
    assert TRUST.client("127.0.0.1", fwd, ["198.51.100.1"]) == "2001:db8:cafe::17"
    assert TRUST.client("127.0.0.1", ["proto=https"], []) == "127.0.0.1"


def test_bad_cidr_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="--trusted-proxy 'nonsense'"):
        TrustedProxies(["nonsense"])


def test_metrics_address_must_be_loopback_unless_public() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.org")
    check_metrics_address("127.0.0.1", public=False)
    check_metrics_address("0.0.0.0", public=True)
    with pytest.raises(UsageError, match="--metrics-public"):
        check_metrics_address("0.0.0.0", public=False)


def test_log_lines_are_sanitised() -> None:
    rec = logging.LogRecord("veil.dht", logging.INFO, __file__, 1, "peer joined at %s", ("evil\x1b[31m\r\nFAKE LINE",), None)
    line = SafeFormatter("%(levelname)s %(message)s").format(rec)
    assert "\x1b" not in line and "\n" not in line and "\r" not in line
    assert line == "INFO peer joined at evil  FAKE LINE"
    assert rec.msg == "peer joined at %s"  # the record is left as it was for other handlers


def _samples(m: Metrics) -> dict[str, float]:
    body, _ = m.render()
    return {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples if not s.labels}


def test_role_status_becomes_metrics() -> None:
    m = Metrics()
    st = {"storage": {"used": 1234, "shares": 5, "admission": "open"}, "dht": {"contacts": 7, "joined": True},
          "repairer": {"queue": 3, "repaired_files": 2}, "payments": {"accepted": 900}}
    m.add_source(role_metrics(lambda: st))
    got = _samples(m)
    assert got["veil_storage_used_bytes"] == 1234 and got["veil_storage_shares"] == 5
    assert got["veil_dht_routing_table_contacts"] == 7 and got["veil_dht_joined"] == 1
    assert got["veil_repair_queue_files"] == 3 and got["veil_repair_files_repaired_total"] == 2
    assert got["veil_earnings_accepted_base_units_total"] == 900
    assert "veil_relay_circuits_open" not in got  # a role the node does not run is left out
    st["storage"]["used"] = 99
    assert _samples(m)["veil_storage_used_bytes"] == 99  # read at scrape time


def test_a_failing_source_does_not_fail_the_scrape() -> None:
    m = Metrics()

    def broken() -> dict[str, dict[str, object]]:
        raise RuntimeError("boom")

    m.add_source(role_metrics(broken))
    m.shares_stored.inc()
    assert _samples(m)["veil_storage_shares_stored_total"] == 1
