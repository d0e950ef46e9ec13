"""Paying storage nodes for the gateway's downloads, and telling the page what one will cost.

With ``--wallet`` the gateway holds one ``client.payer.Payer`` for its whole run: every
ciphertext fetch goes through it, so free-allowance bytes are claimed first and then the
wallet's channel deposits pay, never more in total than ``--max-spend``, never to a node above
``--max-price-per-gb``, and never past a visitor's or a file's daily budget (gateway/budget.py).
Without a wallet a
download from nodes that charge is refused with 402 (``NO_WALLET``).

The cost estimate is what the fetcher will ask for: blocks of k+1 shares (client/download.py:
the slow tail is paid for too) at the highest price among the holders.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veil.client.config import payment_setting
from veil.client.lease import node_terms
from veil.client.ledger_client import LedgerClient
from veil.client.locate import Located
from veil.client.network import Network, NodeInfo
from veil.client.payer import GuardedPayer, Payer, Paying
from veil.client.wallet import Wallet, open_wallet
from veil.errors import UsageError, VeilError
from veil.format.manifest import Manifest
from veil.gateway.budget import SpendBudgets, SpendRules
from veil.ledger.amount import parse_amount
from veil.protocol import payments as pay

NO_WALLET = "the nodes holding this file charge for downloads; this gateway has no wallet to pay with"
TERMS_TTL = 60.0
CURRENCY = "VEIL"


def fetched_bytes(man: Manifest, shares: int) -> int:
    """Block bytes a whole download asks for: every segment from k+1 shares (or all there are)."""
    return man.share_len() * min(man.k + 1, max(shares, man.k))


def download_cost(man: Manifest, shares: int, prices: list[int], allowance_left: int | None) -> dict[str, Any]:
    """The body of GET /api/files/{verify}/cost: ``prices`` per GB of the holders (0 = free)."""
    price = max(prices, default=0)
    nbytes = fetched_bytes(man, shares)
    return {
        "size": man.size,
        "fetch_bytes": nbytes,
        "price_per_gb": price,
        "free": price == 0,
        "estimate": pay.paid_cost(nbytes, price),
        "currency": CURRENCY,
        "allowance_left": allowance_left,
    }


def holder_nodes(loc: Located) -> list[NodeInfo]:
    seen: dict[bytes, NodeInfo] = {}
    for nodes in loc.holders.values():
        for node in nodes:
            seen.setdefault(node.node_id, node)
    return list(seen.values())


class TermsCache:
    """Each node's advertised price per GB (0 for a node that does not charge), kept briefly."""

    def __init__(self, fetch: Callable[[Network, NodeInfo], pay.Terms | None] = node_terms,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._prices: dict[bytes, tuple[float, int]] = {}

    def price(self, net: Network, node: NodeInfo) -> int:
        now = self._clock()
        with self._lock:
            hit = self._prices.get(node.node_id)
            if hit is not None and now - hit[0] < TERMS_TTL:
                return hit[1]
        terms = self._fetch(net, node)
        price = terms.price_per_gb if terms is not None else 0
        with self._lock:
            self._prices[node.node_id] = (now, price)
        return price


@dataclass
class GatewayWallet:
    """The gateway's wallet (already unlocked) and the payer built on it once a ledger is known."""

    wallet: Wallet
    max_spend: int
    deposit: int
    rules: SpendRules = field(default_factory=SpendRules)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._payer: Payer | None = None
        self.budgets = SpendBudgets(self.rules)

    def payer_for(self, net: Network, visitor: str, si: bytes) -> Paying | None:
        """The payer for one visitor's download of one file: the shared payer under the
        gateway's price ceiling and budgets."""
        payer = self.payer(net)
        return None if payer is None else GuardedPayer(payer, self.budgets.guard(visitor, si))

    def payer(self, net: Network) -> Payer | None:
        """The gateway's payer; None while the network lists no validator (nothing to pay through)."""
        with self._lock:
            if self._payer is None:
                ledger = LedgerClient.from_network(net)
                if ledger is None:
                    return None
                w = self.wallet
                self._payer = Payer(lambda: w, ledger,
                                    max_spend=self.max_spend, deposit=max(1, min(self.max_spend, self.deposit)))
            return self._payer

    @property
    def spent(self) -> int:
        """Base units signed away in cheques so far (metrics)."""
        payer = self._payer
        return payer.spent if payer is not None else 0

    def allowance_left(self, net: Network) -> int | None:
        """Free-tier bytes the ledger says this wallet has left this epoch (None if it cannot say)."""
        payer = self.payer(net)
        if payer is None:
            return None
        try:
            return int(payer.ledger.account(self.wallet.address)["allowance_left"])
        except VeilError:
            return None

    def close(self) -> None:
        with self._lock:
            if self._payer is not None:
                self._payer.close()
                self._payer.ledger.close()


def spend_rules(max_spend: int, max_price: str | None, visitor_budget: str | None,
                file_budget: str | None) -> SpendRules:  # fmt: skip
    """``--max-price-per-gb`` (default: any), ``--visitor-budget`` (default: max-spend / 100)
    and ``--file-budget`` (default: max-spend / 10), each budget per day; 'none' for no budget."""

    def budget(text: str | None, default: int) -> int | None:
        if text is None:
            return max(1, default)
        return None if text.lower() == "none" else parse_amount(text)

    return SpendRules(parse_amount(max_price) if max_price is not None else None,
                      budget(visitor_budget, max_spend // 100), budget(file_budget, max_spend // 10))  # fmt: skip


def gateway_wallet(path: Path | None, max_spend: str | None, max_price: str | None = None,
                   visitor_budget: str | None = None, file_budget: str | None = None) -> GatewayWallet | None:  # fmt: skip
    """``--wallet``/``--max-spend`` and the spending rules (also the gateway role's keys).

    The wallet is unlocked now, with VEIL_PASSPHRASE, so a wrong passphrase stops the gateway
    at start rather than failing a visitor's download.
    """
    if path is None:
        if any(x is not None for x in (max_spend, max_price, visitor_budget, file_budget)):
            raise UsageError("--max-spend (and the budgets) needs --wallet: without a wallet the gateway spends nothing")
        return None
    secret = os.environ.get("VEIL_PASSPHRASE")
    if secret is None:
        raise UsageError("--wallet needs the wallet's passphrase in VEIL_PASSPHRASE")
    limit = parse_amount(max_spend) if max_spend is not None else payment_setting("max_spend")
    rules = spend_rules(limit, max_price, visitor_budget, file_budget)
    return GatewayWallet(open_wallet(path, secret), limit, payment_setting("deposit"), rules)
