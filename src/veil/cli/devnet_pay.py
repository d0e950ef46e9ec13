"""Payment options of `veil devnet up`: genesis parameters and what storage nodes charge."""

from __future__ import annotations

from veil.devnet.ledger import DEVNET_CHAIN
from veil.ledger.amount import parse_amount, parse_size
from veil.ledger.params import Params

from .ledger_opts import parse_duration


def genesis_params(allowance: str | None, epoch: str | None, price_per_gb: str | None) -> Params | None:
    """The devnet's genesis parameters, or None for the defaults."""
    if allowance is None and epoch is None and price_per_gb is None:
        return None
    kw: dict[str, int] = {}
    if allowance is not None:
        kw["allowance_bytes"] = parse_size(allowance)
    if epoch is not None:
        kw["epoch_seconds"] = parse_duration(epoch)
    if price_per_gb is not None:
        kw["price_per_gb"] = parse_amount(price_per_gb)
    return Params(chain_id=DEVNET_CHAIN, **kw)


def charge_options(price_per_gb: str | None, lease_price: str | None, free_credit: str | None) -> list[str] | None:
    """`veil node run` options that make the devnet's storage nodes charge (None: they serve free)."""
    if price_per_gb is None:
        return None
    opts = ["--price-per-gb", price_per_gb]
    if lease_price is not None:
        opts += ["--lease-price-per-gb-day", lease_price]
    if free_credit is not None:
        opts += ["--free-credit", free_credit]
    return opts


commands: list[object] = []
