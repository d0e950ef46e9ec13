"""What the gateway tells the page a download costs (gateway/pay.py), with fake manifests and
nodes; the real thing on a charging devnet is tests/browser/test_gateway_payments.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.network import Network, NodeInfo
from veil.errors import UsageError
from veil.format.manifest import Manifest
from veil.gateway.openapi import spec
from veil.gateway.pay import TERMS_TTL, TermsCache, download_cost, fetched_bytes, gateway_wallet
from veil.protocol import payments as pay

GB = 10**9


def manifest(size: int = 3_000_000, k: int = 3, n: int = 10) -> Manifest:
    segsize = 1 << 20
    nseg = max(1, -(-size // segsize))
    bsize = -(-(segsize + 16) // k)
    last = size - segsize * (nseg - 1) + 16
    return Manifest(si=bytes(16), k=k, n=n, happy=n, segsize=segsize, size=size, bsize=bsize, lbsize=-(-last // k),
                    roots=tuple(bytes(32) for _ in range(n)), segroot=bytes(32), meta=b"")


def node(i: int) -> NodeInfo:
    return NodeInfo(host="127.0.0.1", port=1000 + i, node_id=bytes([i]) * 32)


def test_free_nodes_cost_nothing() -> None:
    c = download_cost(manifest(), 10, [0, 0, 0], None)
    assert c["free"] is True and c["estimate"] == 0 and c["price_per_gb"] == 0
    assert c["currency"] == "VEIL" and c["allowance_left"] is None and c["size"] == 3_000_000
    assert download_cost(manifest(), 10, [], None)["free"] is True


def test_the_highest_price_over_k_plus_one_shares() -> None:
    man = manifest()
    c = download_cost(man, 10, [0, GB // 2, GB], 123)
    assert c["free"] is False and c["price_per_gb"] == GB
    assert c["fetch_bytes"] == 4 * man.share_len()  # k+1 shares: the fetcher pays the slow tail too
    assert c["estimate"] == 4 * man.share_len()  # 1 VEIL per GB is one unit per byte
    assert c["allowance_left"] == 123


def test_fetched_bytes_follow_the_shares_there_are() -> None:
    man = manifest(k=3, n=5)
    assert fetched_bytes(man, 3) == 3 * man.share_len()
    assert fetched_bytes(man, 5) == 4 * man.share_len()
    assert fetched_bytes(manifest(size=0), 10) == 4 * manifest(size=0).share_len()


def test_estimate_rounds_up_like_the_payer() -> None:
    man = manifest(size=1000)
    c = download_cost(man, 10, [1], None)
    assert c["estimate"] == pay.paid_cost(c["fetch_bytes"], 1) == 1 and not c["free"]


def test_the_cost_is_documented_as_the_handler_answers() -> None:
    doc = spec()
    schema = doc["components"]["schemas"]["Cost"]
    body = download_cost(manifest(), 10, [GB], None)
    assert set(schema["required"]) == set(body) == set(schema["properties"])
    assert "/api/files/{verify}/cost" in doc["paths"]
    assert "402" in doc["paths"]["/api/files/{verify}/segments"]["get"]["responses"]


def test_terms_are_asked_once_per_node_until_they_expire() -> None:
    now = [0.0]
    asked: list[bytes] = []

    def fetch(net: Network, n: NodeInfo) -> pay.Terms | None:
        asked.append(n.node_id)
        if n.port == 1001:
            return None  # a node that does not charge has no terms
        return pay.Terms(payee=bytes(32), chain="devnet", price_per_gb=7, lease_price_per_gb_day=0,
                         free_credit=0, min_life=0)

    cache = TermsCache(fetch, clock=lambda: now[0])
    net = Network(nodes=[])
    assert [cache.price(net, node(i)) for i in (1, 2, 1, 2)] == [0, 7, 0, 7]
    assert len(asked) == 2
    now[0] = TERMS_TTL + 1
    assert cache.price(net, node(2)) == 7 and len(asked) == 3


def test_wallet_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gateway_wallet(None, None) is None
    with pytest.raises(UsageError, match="needs --wallet"):
        gateway_wallet(None, "5")
    monkeypatch.delenv("VEIL_PASSPHRASE", raising=False)
    with pytest.raises(UsageError, match="VEIL_PASSPHRASE"):
        gateway_wallet(tmp_path / "w.wallet", None)
