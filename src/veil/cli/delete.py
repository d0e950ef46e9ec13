"""`veil rm CAP`: delete a file's shares from the nodes, as its uploader (client/deletion.py).

cli/folders.py's `veil rm FOLDER/name` hands a file cap or share link here; folder entries keep
their meaning there.
"""

from __future__ import annotations

from pathlib import Path

import click

from veil.client.deletion import delete_file, key_for
from veil.format.caps import VerifyCap, parse_verify_cap
from veil.format.deletion import parse_deletion_key
from veil.format.remote_text import clean

from .common import open_network
from .jsonout import emit


def file_cap(text: str) -> VerifyCap | None:
    """The verify cap of a file cap or share link; None for anything else (a folder path)."""
    t = text.strip()
    if not (t.startswith(("veil:r1:", "veil:v1:")) or ("://" in t and "/f/" in t)):
        return None
    return parse_verify_cap(t)


def rm_file(vc: VerifyCap, key_hex: str | None, as_json: bool, network_path: Path | None) -> None:
    key = parse_deletion_key(key_hex) if key_hex is not None else key_for(vc)
    net = open_network(network_path)
    try:
        res = delete_file(net, vc, key)
    finally:
        net.close()
    for w in res.unreachable + res.refused:
        click.echo(f"veil: warning: {clean(w)}", err=True)
    if as_json:
        emit({"verify_cap": vc.to_string(), "deleted": res.shares,
              "nodes": {clean(k): v for k, v in sorted(res.removed.items())},
              "refused": len(res.refused), "unreachable": len(res.unreachable)})  # fmt: skip
        return
    click.echo(f"deleted {res.shares} shares from {len(res.removed)} nodes"
               + (f"; {len(res.unreachable)} nodes unreachable (their shares stay until they are asked again)"
                  if res.unreachable else ""))  # fmt: skip
