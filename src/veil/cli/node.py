"""`veil node run`: run one node process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from veil.errors import UsageError

from .common import parse_size, setup_logging


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"bad --listen {text!r}: use HOST:PORT")
    return host or "127.0.0.1", int(port)


@click.group()
def node() -> None:
    """Run and manage a Veil node."""


@node.command("run")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Data directory.")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT to serve on.")
@click.option("--role", "roles", default="storage", show_default=True, help="Comma-separated roles to run.")
@click.option("--capacity", default=None, help="Most bytes of shares to keep (e.g. 10GB; default: the disk's free space).")
@click.option("--gateway-listen", default=None, help="Gateway role: HOST:PORT for browsers (plain HTTP; default 127.0.0.1:8080).")
@click.option("--tenants", default=None, help="Gateway role: white-label tenants file (TOML).")
@click.option("--network", "network_path", default=None, help="Gateway role: the network file (default: the devnet's).")
@click.option("--bootstrap", default=None, help="HOST:PORT[,...] of nodes to join the DHT through (turns on the dht role).")
@click.option("-v", "--verbose", is_flag=True)
def run(data_dir: Path, listen: str, roles: str, capacity: str | None, gateway_listen: str | None, tenants: str | None,
        network_path: str | None, bootstrap: str | None, verbose: bool) -> None:
    """Run a node with the given roles until SIGTERM."""
    from veil.node.main import run_node

    setup_logging(verbose)
    host, port = parse_listen(listen)
    config: dict[str, Any] = {}
    if capacity:
        config["capacity"] = parse_size(capacity)
    for key, value in (("gateway_listen", gateway_listen), ("tenants", tenants), ("network", network_path)):
        if value:
            config[key] = value
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    if bootstrap:
        config["bootstrap"] = [a.strip() for a in bootstrap.split(",") if a.strip()]
        if "dht" not in role_list:
            role_list.append("dht")
    run_node(data_dir, host, port, role_list, config)


commands = [node]
