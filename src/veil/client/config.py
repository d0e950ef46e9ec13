"""The user's client settings: ``$VEIL_HOME/config.toml`` (all optional), env vars override.

    [payments]
    max_spend = "1"          # VEIL one `veil get` may spend past the free allowance ($VEIL_MAX_SPEND)
    deposit = "1"            # the most VEIL a new channel to a node locks ($VEIL_DEPOSIT)
    deposit_floor = "0.001"  # the least: a download locks its expected spend per node, within these ($VEIL_DEPOSIT_FLOOR)

    [client]
    gateway = "https://veil.example"  # gateway URL in share links ($VEIL_GATEWAY; else the network file's)

    [anon]
    enabled = true           # every transfer over onion circuits ($VEIL_ANON=1; --anon/--direct)
    hops = 3                 # relays per circuit, 1-5 ($VEIL_HOPS; --hops)
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from veil.errors import UsageError
from veil.ledger.amount import parse_amount

from .network import veil_home

DEFAULTS = {"max_spend": "1", "deposit": "1", "deposit_floor": "0.001"}


def _file() -> dict[str, Any]:
    path = veil_home() / "config.toml"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e


def payment_setting(name: str) -> int:
    """``max_spend``, ``deposit`` or ``deposit_floor`` in units: env ``VEIL_<NAME>``, else config.toml, else the default."""
    env = os.environ.get(f"VEIL_{name.upper()}")
    if env:
        return parse_amount(env)
    section = _file().get("payments", {})
    value = section.get(name, DEFAULTS[name]) if isinstance(section, dict) else DEFAULTS[name]
    return parse_amount(str(value))


def payout_setting() -> str:
    """Where `veil put` sends the uploader's reward by default: env ``VEIL_PAYOUT``, else
    ``[payments] payout`` in config.toml (an address, or ``wallet``), else ``none``."""
    env = os.environ.get("VEIL_PAYOUT")
    if env:
        return env
    section = _file().get("payments", {})
    value = section.get("payout", "none") if isinstance(section, dict) else "none"
    return str(value)


def gateway_setting(from_network: str) -> str:
    """The gateway URL share links name: env ``VEIL_GATEWAY``, else ``[client] gateway`` in
    config.toml, else the network file's ``gateway``, else "" (no link is printed: a link to a
    gateway nobody configured would be a guess)."""
    env = os.environ.get("VEIL_GATEWAY")
    if env:
        return env.rstrip("/")
    section = _file().get("client", {})
    value = section.get("gateway") if isinstance(section, dict) else None
    return str(value or from_network or "").rstrip("/")


def anon_setting(flag: bool | None, hops: int | None) -> tuple[bool, int]:
    """Whether to use onion circuits and how many hops: the command line, else ``VEIL_ANON`` /
    ``VEIL_HOPS``, else ``[anon]`` in config.toml, else direct with 3 hops."""
    from veil.protocol.circuit import DEFAULT_HOPS, check_hops

    section = _file().get("anon", {})
    section = section if isinstance(section, dict) else {}
    if flag is None:
        env = os.environ.get("VEIL_ANON", "").strip().lower()
        if env:
            if env not in ("0", "1", "true", "false", "yes", "no"):
                raise UsageError(f"VEIL_ANON must be 1 or 0, not {env!r}")
            flag = env in ("1", "true", "yes")
        else:
            flag = bool(section.get("enabled", False))
    if hops is None:
        env = os.environ.get("VEIL_HOPS", "").strip()
        if env and not env.isdigit():
            raise UsageError(f"VEIL_HOPS must be a number of hops (1-5), not {env!r}")
        raw = int(env) if env else section.get("hops", DEFAULT_HOPS)
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise UsageError("[anon] hops in config.toml must be a number (1-5)")
        hops = raw
    return flag, check_hops(hops)
