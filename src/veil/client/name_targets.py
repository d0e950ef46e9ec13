"""A name where a file cap is taken: ``alice.veil`` (its ``file`` record) or
``alice.veil/docs/report.pdf`` (that path in the folder its ``site`` record points at). The
records come from a lookup checked against a signed block (names.py).

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

from pathlib import Path

from veil.errors import UsageError
from veil.format.caps import ReadCap, parse_read_cap
from veil.format.folder import FILE
from veil.format.folder_caps import parse_folder_cap

from .folders import walk
from .names import NameClient, default_floor_path, default_ledger, is_name
from .network import Network


def read_cap_of(text: str, net: Network | None = None, network_path: Path | None = None) -> ReadCap:
    """``text`` as a read cap: a cap or share link as it is, or a name (with a path into its site)."""
    if not is_name(text):
        return parse_read_cap(text)
    nc = NameClient(default_ledger(network_path), default_floor_path())
    try:
        cap, parts, kind = nc.cap_of(text)
    finally:
        nc.ledger.close()
    if kind == FILE:
        return parse_read_cap(cap)
    head = text.strip().split("/", 1)[0]
    if not parts:
        raise UsageError(f"{head} is a site (a folder): `veil ls {head}/` lists it, `veil get -r {head} -o DIR` fetches it")
    if net is None:
        raise UsageError(f"{text} needs the network to read {head}'s site folder")
    _, e = walk(net, parse_folder_cap(cap), parts)
    if e is None or e.kind != FILE:
        raise UsageError(f"{text} is a folder, not a file: `veil ls {text}`")
    return parse_read_cap(e.cap)
