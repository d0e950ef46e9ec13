"""The user's client settings: ``$VEIL_HOME/config.toml`` (all optional), env vars override.

    [payments]
    max_spend = "1"          # VEIL one `veil get` may spend past the free allowance ($VEIL_MAX_SPEND)
    deposit = "1"            # VEIL locked per new channel to a node ($VEIL_DEPOSIT)
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from veil.errors import UsageError
from veil.ledger.amount import parse_amount

from .network import veil_home

DEFAULTS = {"max_spend": "1", "deposit": "1"}


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
    """``max_spend`` or ``deposit`` in units: env ``VEIL_<NAME>``, else config.toml, else the default."""
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
