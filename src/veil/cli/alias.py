"""`veil alias add|list|rm`: short names for folder caps (``docs:photos``), as Tahoe's aliases."""

from __future__ import annotations

import click

from veil.client.aliases import add_alias, aliases_path, load_aliases, remove_alias
from veil.format.folder_caps import FolderReadCap, FolderWriteCap, parse_folder_cap


@click.group()
def alias() -> None:
    """Name folder caps, then write NAME:path wherever a folder goes (kept in $VEIL_HOME/aliases.json)."""


@alias.command()
@click.argument("name")
@click.argument("cap")
@click.option("--force", is_flag=True, help="Replace an existing alias of that name.")
def add(name: str, cap: str, force: bool) -> None:
    """Save CAP (a folder write, read or verify cap, or a folder link) as NAME."""
    got = add_alias(name, cap, force)
    kind = "write" if isinstance(got, FolderWriteCap) else "read" if isinstance(got, FolderReadCap) else "verify"
    click.echo(f"{name}: a folder {kind} cap (use {name}:path)")


@alias.command(name="list")
def list_() -> None:
    """Show every alias, the kind of cap it names, and the cap (write caps are secrets)."""
    got = load_aliases()
    if not got:
        click.echo(f"no aliases yet (`veil alias add NAME CAP`; kept in {aliases_path()})")
    for name, cap in sorted(got.items()):
        fc = parse_folder_cap(cap)
        kind = "write" if isinstance(fc, FolderWriteCap) else "read" if isinstance(fc, FolderReadCap) else "verify"
        click.echo(f"{name}:  {kind:<6} {cap}")


@alias.command()
@click.argument("name")
def rm(name: str) -> None:
    """Forget the alias NAME (the folder itself is not touched)."""
    remove_alias(name)


commands = [alias]
