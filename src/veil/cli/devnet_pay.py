"""Payment options of `veil devnet up`: genesis parameters and what storage nodes charge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from veil.devnet.ledger import DEVNET_CHAIN
from veil.devnet.manager import Devnet
from veil.format.textparse import parse_size
from veil.ledger.amount import parse_amount
from veil.ledger.params import Params

from .ledger_opts import parse_duration

F = TypeVar("F", bound=Callable[..., Any])


def genesis_params(allowance: str | None, epoch: str | None, price_per_gb: str | None,
                   names: dict[str, str | None] | None = None) -> Params | None:  # fmt: skip
    """The devnet's genesis parameters, or None for the defaults."""
    names_: dict[str, str] = {k: v for k, v in (names or {}).items() if v is not None}
    if allowance is None and epoch is None and price_per_gb is None and not names_:
        return None
    kw: dict[str, int] = {}
    if "name_commit_wait" in names_:  # a fast devnet: the reveal window scales with the wait
        kw["name_commit_min"] = parse_duration(names_["name_commit_wait"])
        kw["name_commit_max"] = max(kw["name_commit_min"] * 100, 600)
    if "name_year" in names_:
        kw["name_year"] = parse_duration(names_["name_year"])
        kw["name_grace"] = max(1, kw["name_year"] // 12)
    if "name_auction" in names_:
        kw["name_auction_seconds"] = parse_duration(names_["name_auction"])
        kw["name_auction_extend"] = max(1, kw["name_auction_seconds"] // 10)
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


def pay_options(f: F) -> F:
    """`veil devnet up` options for a new devnet's ledger and charging nodes."""
    f = click.option("--allowance", default=None, help="New devnet: free download bytes per account per epoch (e.g. 50MB).")(f)
    f = click.option("--epoch", default=None, help="New devnet: epoch length (e.g. 1h, 30d).")(f)
    f = click.option("--price-per-gb", default=None,
                     help="New devnet: nodes charge this many VEIL per GB served; the pool pays it for free bytes.")(f)
    f = click.option("--lease-price-per-gb-day", default=None, help="New devnet: VEIL nodes ask per GB kept per day.")(f)
    f = click.option("--name-commit-wait", default=None,
                     help="New devnet: how long a name registration waits between commit and reveal (default 60s).")(f)
    f = click.option("--name-year", default=None,
                     help="New devnet: what one paid name year lasts (e.g. 1h; the grace period is a twelfth).")(f)
    f = click.option("--name-auction", default=None,
                     help="New devnet: how long a short name's auction runs (default 7d; late bids extend a tenth).")(f)
    return click.option("--free-credit", default=None,
                        help="New devnet: unsettled free-tier bytes each node takes per downloader.")(f)


def pay_settings(d: Devnet, allowance: str | None = None, epoch: str | None = None, price_per_gb: str | None = None,
                 lease_price_per_gb_day: str | None = None, free_credit: str | None = None,
                 name_commit_wait: str | None = None, name_year: str | None = None,
                 name_auction: str | None = None) -> tuple[Params | None, list[str] | None]:  # fmt: skip
    params = genesis_params(allowance, epoch, price_per_gb, {"name_commit_wait": name_commit_wait,
                                                             "name_year": name_year, "name_auction": name_auction})
    charge = charge_options(price_per_gb, lease_price_per_gb_day, free_credit)
    if d.exists() and (params is not None or charge is not None):
        click.echo("devnet: exists already; payment options apply only when a devnet is created", err=True)
    return params, charge


commands: list[object] = []
