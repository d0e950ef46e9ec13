"""Options and helpers shared by `veil wallet`, `veil channel` and `veil ledger`:
where the wallet is, its passphrase, and which validator to talk to."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from veil.client.ledger_client import LedgerClient, parse_endpoints
from veil.client.network import default_network_path, load_network
from veil.client.wallet import Wallet, default_wallet_path, open_wallet
from veil.errors import UsageError
from veil.ledger.address import decode_address, encode_address
from veil.ledger.amount import SYMBOL, format_amount

F = TypeVar("F", bound=Callable[..., Any])


def wallet_option(f: F) -> F:
    return click.option(
        "--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Wallet file (default: $VEIL_WALLET, else $VEIL_HOME/wallet).",
    )(f)  # fmt: skip


_GENESIS_PIN: list[str] = []


def _remember_pin(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        _GENESIS_PIN[:] = [value]


def validator_option(f: F) -> F:
    f = click.option(
        "--validator", default=None, metavar="NODEID@HOST:PORT[,...]",
        help="Validators to talk to, pinned by node id (default: $VEIL_VALIDATOR, else the validators in the network file).",
    )(f)  # fmt: skip
    f = click.option(
        "--genesis", default=None, metavar="HASH", expose_value=False, callback=_remember_pin,
        help="The chain's genesis hash (hex) to pin (default: $VEIL_GENESIS, else the network file's).",
    )(f)  # fmt: skip
    return click.option(
        "--network", "network_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Network file (default: $VEIL_NETWORK, else $VEIL_HOME/devnet/network.json).",
    )(f)  # fmt: skip


def wallet_path(path: Path | None) -> Path:
    return path or default_wallet_path()


def passphrase(confirm: bool = False) -> str:
    env = os.environ.get("VEIL_PASSPHRASE")
    if env is not None:
        return env
    return str(click.prompt("Wallet passphrase", hide_input=True, confirmation_prompt=confirm, err=True))


def unlock(path: Path | None) -> Wallet:
    return open_wallet(wallet_path(path), passphrase())


def _pin(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        pin = bytes.fromhex(text.strip())
    except ValueError:
        pin = b""
    if len(pin) != 32:
        raise UsageError(f"bad genesis hash {text!r}: 64 hex characters")
    return pin


def connect(validator: str | None, network_path: Path | None, genesis: str | None = None) -> LedgerClient:
    """A client for every validator (pinned), with the genesis hash pinned when one is known."""
    pin = _pin(genesis or (_GENESIS_PIN[0] if _GENESIS_PIN else None) or os.environ.get("VEIL_GENESIS"))
    spec = validator or os.environ.get("VEIL_VALIDATOR")
    if spec:
        return LedgerClient(parse_endpoints(spec), pin)
    p = network_path or default_network_path()
    if not p.exists():
        raise UsageError("no validator given: pass --validator NODEID@HOST:PORT, set VEIL_VALIDATOR, or run `veil devnet up`")
    net = load_network(p)
    eps = [(n.host, n.port, n.node_id) for n in net.nodes if "validator" in n.roles]
    if not eps:
        raise UsageError(f"the network file {p} lists no validator; pass --validator NODEID@HOST:PORT")
    return LedgerClient(eps, pin or _pin(str(net.extra.get("genesis") or "")))


def parse_addr(text: str) -> bytes:
    return decode_address(text)


def money(v: int) -> str:
    return f"{format_amount(v)} {SYMBOL}"


def addr_text(a: bytes) -> str:
    return encode_address(a)


def when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``7d`` or plain seconds."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(t[-1:], 0)
    num = t[:-1] if mult else t
    if not num.isdigit() or int(num) <= 0:
        raise UsageError(f"bad duration {text!r} (examples: 90s, 15m, 12h, 7d)")
    return int(num) * (mult or 1)
