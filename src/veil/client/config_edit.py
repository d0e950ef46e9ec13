"""`veil config`: read and change the settings in ``$VEIL_HOME/config.toml`` (client/config.py
reads them). Edits go through tomlkit, which keeps the user's comments, order and layout
(a hand-made TOML writer would drop them); the file is replaced atomically.

Each setting has a name on the command line, a place in the file and a check of its value, so a
bad value is refused with one line before anything is written.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from veil.durable import write_atomic
from veil.errors import UsageError, VeilError
from veil.ledger.address import decode_address
from veil.ledger.amount import parse_amount

from .network import veil_home


def _bool(text: str) -> bool:
    v = text.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise UsageError(f"expected true or false, not {text!r}")


def _hops(text: str) -> int:
    from veil.protocol.circuit import check_hops

    if not text.strip().isdigit():
        raise UsageError(f"expected a number of hops (1-5), not {text!r}")
    return check_hops(int(text))


def _amount(text: str) -> str:
    parse_amount(text)  # refuses what `veil get --max-spend` would refuse
    return text.strip()


def _payout(text: str) -> str:
    v = text.strip()
    if v not in ("none", "wallet"):
        decode_address(v)
    return v


def _url(text: str) -> str:
    v = text.strip().rstrip("/")
    scheme, sep, rest = v.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or any(c.isspace() for c in v):
        raise UsageError(f"expected a gateway URL such as https://veil.example, not {text!r}")
    return v


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    parse: Callable[[str], Any]
    help: str


SETTINGS = {
    "anon": Setting("anon", "enabled", _bool, "every transfer over onion circuits (true/false; $VEIL_ANON)"),
    "hops": Setting("anon", "hops", _hops, "relays per circuit, 1-5 ($VEIL_HOPS)"),
    "max-spend": Setting("payments", "max_spend", _amount, "VEIL one `veil get` may spend past the allowance"),
    "deposit": Setting("payments", "deposit", _amount, "most VEIL a new payment channel locks"),
    "deposit-floor": Setting("payments", "deposit_floor", _amount,
                             "least VEIL a new channel locks (else: the download's expected spend there)"),
    "gateway": Setting("client", "gateway", _url, "gateway URL share links name ($VEIL_GATEWAY)"),
    "payout": Setting("payments", "payout", _payout, "where uploads' rewards go: none, wallet or an address"),
}


def config_path() -> Path:
    return veil_home() / "config.toml"


def _setting(name: str) -> Setting:
    s = SETTINGS.get(name)
    if s is None:
        raise UsageError(f"no setting {name!r}; settings: {', '.join(SETTINGS)}")
    return s


def _load(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    try:
        return tomlkit.parse(text)
    except TOMLKitError as e:
        raise UsageError(f"cannot read {path}: {e}") from e


def _plain(path: Path) -> dict[str, Any]:
    return _load(path).unwrap()


def get_setting(name: str) -> Any:
    """The value in the file (None when unset; the environment and defaults are not consulted)."""
    s = _setting(name)
    section = _plain(config_path()).get(s.section)
    return section.get(s.key) if isinstance(section, dict) else None


def set_setting(name: str, text: str | None) -> None:
    """Write ``name = text`` (checked), or remove it with ``text=None``; other lines are kept."""
    s = _setting(name)
    path = config_path()
    doc = _load(path)
    if text is None:
        section = doc.get(s.section)
        if isinstance(section, dict) and s.key in section:
            del section[s.key]
    else:
        try:
            value = s.parse(text)
        except VeilError as e:
            raise UsageError(f"{name}: {e}") from e
        if s.section not in doc:
            doc.add(s.section, tomlkit.table())
        doc[s.section][s.key] = value
    out = tomlkit.dumps(doc)
    tomllib.loads(out)  # what client/config.py will read back must parse
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, out.encode("utf-8"), 0o600)


def list_settings() -> dict[str, Any]:
    """The settings set in the file, by name."""
    plain = _plain(config_path())
    out: dict[str, Any] = {}
    for name, s in SETTINGS.items():
        section = plain.get(s.section)
        if isinstance(section, dict) and s.key in section:
            out[name] = section[s.key]
    return out
