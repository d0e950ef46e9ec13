"""`veil config list | get NAME | set NAME VALUE | unset NAME`: the client's settings file."""

from __future__ import annotations

import json

import click

from veil.client.config_edit import SETTINGS, config_path, get_setting, list_settings, set_setting


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


@click.group(name="config")
def config_group() -> None:
    """Client settings in $VEIL_HOME/config.toml (environment variables and flags override them)."""


@config_group.command(name="list")
def list_cmd() -> None:
    """Every setting: its value in the file, or (unset), and what it does."""
    values = list_settings()
    for name, s in SETTINGS.items():
        shown = _show(values[name]) if name in values else "(unset)"
        click.echo(f"{name:<10} {shown:<12} {s.help}")
    click.echo(f"file: {config_path()}")


@config_group.command(name="get")
@click.argument("name")
def get_cmd(name: str) -> None:
    """Print one setting's value in the file (nothing and exit 1 when unset)."""
    value = get_setting(name)
    if value is None:
        raise SystemExit(1)
    click.echo(_show(value))


@config_group.command(name="set")
@click.argument("name")
@click.argument("value")
def set_cmd(name: str, value: str) -> None:
    """Set NAME to VALUE, e.g. `veil config set anon true`, `veil config set hops 4`."""
    set_setting(name, value)


@config_group.command(name="unset")
@click.argument("name")
def unset_cmd(name: str) -> None:
    """Remove NAME from the file (back to the default)."""
    set_setting(name, None)


commands = [config_group]
