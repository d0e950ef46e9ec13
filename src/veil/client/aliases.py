"""Folder aliases, as Tahoe's ``tahoe:``: a short name for a folder cap, kept in the client's
config dir (``$VEIL_HOME/aliases.json``, mode 0600: it holds write caps), and the
``FOLDER[/path]`` syntax every folder command accepts:

    veil:fw1:…/photos/2024      a cap, then a path inside the folder
    docs:photos/2024            an alias, then a path ("docs:" alone is the folder itself)
    https://gw/d/…#…            a folder link (no path after it)
    alice.veil/photos/2024      a name's site record (checked against a signed block), then a path

Imports from: veil.durable, veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from veil.durable import write_json_atomic
from veil.errors import CapError, UsageError
from veil.format.folder_caps import FolderCap, parse_folder_cap
from veil.format.names import split_path

from .network import veil_home

ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED = {"veil", "http", "https"}


def aliases_path() -> Path:
    return veil_home() / "aliases.json"


def load_aliases() -> dict[str, str]:
    p = aliases_path()
    try:
        value = json.loads(p.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {p}: {e}") from e
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageError(f"{p} is malformed: expected an object of alias -> cap")
    return value


def add_alias(name: str, cap: str, force: bool = False) -> FolderCap:
    if not ALIAS_RE.match(name) or name.lower() in RESERVED:
        raise UsageError(f"bad alias name {name!r}: letters, digits, '_', '.', '-' (not veil/http/https)")
    parsed = parse_folder_cap(cap)
    got = load_aliases()
    if name in got and not force and got[name] != parsed.to_string():
        raise UsageError(f"alias {name!r} exists already; use --force to replace it")
    got[name] = parsed.to_string()
    write_json_atomic(aliases_path(), got, mode=0o600)
    return parsed


def remove_alias(name: str) -> None:
    got = load_aliases()
    if name not in got:
        raise UsageError(f"no alias {name!r} (`veil alias list`)")
    del got[name]
    write_json_atomic(aliases_path(), got, mode=0o600)


@dataclass(frozen=True)
class FolderPath:
    cap: FolderCap
    parts: list[str]
    text: str  # as typed (for messages)


def parse_folder_path(text: str) -> FolderPath:
    """``CAP[/path]``, ``ALIAS:[path]`` or a folder link; CapError/UsageError with one clear line."""
    t = text.strip()
    if t.startswith(("https://", "http://")):
        return FolderPath(parse_folder_cap(t), [], text)
    if t.startswith("veil:"):
        head, sep, rest = t.partition("/")
        return FolderPath(parse_folder_cap(head), split_path(rest) if sep else [], text)
    from .names import is_name, open_names

    if is_name(t):
        nc = open_names()
        try:
            cap, parts, kind = nc.cap_of(t)
        finally:
            nc.ledger.close()
        if kind != "site":
            raise CapError(f"{t.split('/')[0]} points at a file, not a site folder: `veil get {t.split('/')[0]}`")
        return FolderPath(parse_folder_cap(cap), parts, text)
    name, sep, rest = t.partition(":")
    if not sep:
        raise CapError(f"{text[:80]!r} is not a folder: give a folder cap (veil:fw1:…), a link, or ALIAS:path")
    caps = load_aliases()
    if name not in caps:
        raise UsageError(f"no alias {name!r}: add one with `veil alias add {name} CAP`")
    return FolderPath(parse_folder_cap(caps[name]), split_path(rest), text)
