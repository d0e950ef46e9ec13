"""`veil devnet up|down|status|add|kill`: a local network of node processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from veil.devnet.manager import Devnet
from veil.format.remote_text import clean

from .common import human
from .devnet_pay import pay_options, pay_settings
from .jsonout import emit, json_option

F = TypeVar("F", bound=Callable[..., Any])


def _dir_option(f: F) -> F:
    return click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Devnet directory (default: $VEIL_DEVNET, else $VEIL_HOME/devnet).")(f)


def _node_options(f: F) -> F:
    f = click.option("--capacity", default=None, help="Per-node capacity for new nodes (e.g. 1GB).")(f)
    f = click.option("--repair-interval", type=float, default=None,
                     help="New nodes' --repair-interval: seconds between background checks of one file (default 120).")(f)
    return click.option("--repair-threshold", default=None,
                        help="New nodes repair files below this many healthy shares: happy (default), n, or a count.")(f)


def _node_args(capacity: str | None, repair_interval: float | None, repair_threshold: str | None) -> list[str]:
    args = ["--capacity", capacity] if capacity else []
    if repair_interval is not None:
        args += ["--repair-interval", f"{repair_interval:g}"]
    if repair_threshold is not None:
        args += ["--repair-threshold", repair_threshold]
    return args


@click.group()
def devnet() -> None:
    """A local Veil network on 127.0.0.1 (real node processes over TLS)."""


@devnet.command()
@click.option("--nodes", default=10, show_default=True, help="Storage nodes to create (for a new devnet).")
@click.option("--validators", default=1, show_default=True, type=click.IntRange(1, 15),
              help="Ledger validators to create (a Raft cluster; for a new devnet).")
@click.option("--relays", default=6, show_default=True, type=click.IntRange(0, 64),
              help="Onion relays to create (for a new devnet): `veil get --anon` needs --hops of them (3).")
@click.option("--storage-admission", type=click.Choice(["open", "ticket"]), default="ticket", show_default=True,
              help="New devnet: storage nodes take shares only with a storage ticket within the uploader's free "
                   "storage quota (stake; `veil put` without a wallet signs with the devnet's staked uploader "
                   "key), or from anyone ('open').")
@click.option("--tenants", "tenants_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="White-label tenants file (TOML) for the devnet's gateway (kept for later `up`s).")
@click.option("--s3", "with_s3", is_flag=True,
              help="Also start an S3 endpoint (`veil s3 serve`) and print its URL and key pairs.")
@_node_options
@pay_options
@_dir_option
def up(nodes: int, validators: int, relays: int, storage_admission: str, with_s3: bool, capacity: str | None,
       repair_interval: float | None,
       repair_threshold: str | None, root: Path | None, tenants_path: Path | None, **pay: str | None) -> None:
    """Start the devnet; an existing one restarts with all its data.

    The first storage node starts the DHT and every other joins through it (--bootstrap).
    With --price-per-gb (new devnets only) every storage node charges for downloads."""
    d = Devnet(root)
    if tenants_path is not None:
        from veil.gateway.tenants import load_tenants

        load_tenants(tenants_path)  # a bad file fails here, in one line, before any node starts
    params, charge = pay_settings(d, **pay)
    net, started = d.up(nodes, ["storage"], _node_args(capacity, repair_interval, repair_threshold), params=params,
                        charge=charge, validators=validators, admission=storage_admission == "ticket",
                        relays=relays, tenants=tenants_path)  # fmt: skip
    click.echo(f"devnet: {up_summary(net.nodes)} up ({len(started)} processes started) in {d.root}")
    click.echo(f"network file: {d.network_path}  (clients find storage nodes through the DHT)")
    click.echo(f"node list:    {d.static_network_path}  (every node; --network for the static fast path)")
    if net.bootstrap:
        click.echo(f"DHT, small:   {d.dht_network_path}  (bootstrap {', '.join(net.bootstrap)})")
    if net.gateway:
        click.echo(f"gateway:      {net.gateway}  (open in a browser to share files"
                   + (f"; tenants from {tenants_path})" if tenants_path is not None else ")"))
    nrel = len(net.relay_ports)
    click.echo(f"relays:       {nrel}  (`veil get --anon`, `veil put --anon`: {min(3, nrel)}-hop circuits)")
    nval = sum(1 for n in net.nodes if "validator" in n.roles)
    click.echo(f"ledger:       {nval} validator{'s' if nval != 1 else ''}, genesis {net.extra.get('genesis', '?')}"
               "  (`veil ledger status`)")  # fmt: skip
    if with_s3:
        from veil.devnet import s3

        url, keys = s3.start(d)
        click.echo(f"s3:           {url}  (keys sealed in {s3.s3_dir(d) / 'keys.sealed'})")
        for k in keys:
            click.echo(f"s3 key {k.name + ':':<8} AWS_ACCESS_KEY_ID={k.access_key} AWS_SECRET_ACCESS_KEY={k.secret}")


@devnet.command()
@click.option("--nodes", default=1, show_default=True, help="Storage nodes to add.")
@_node_options
@_dir_option
def add(nodes: int, capacity: str | None, repair_interval: float | None, repair_threshold: str | None,
        root: Path | None) -> None:
    """Add storage nodes; they join the DHT through running nodes."""
    d = Devnet(root)
    _, added = d.add(nodes, _node_args(capacity, repair_interval, repair_threshold))
    click.echo(f"devnet: added {', '.join(added)}")


@devnet.command()
@click.argument("name")
@click.option("--wipe", is_flag=True, help="Also delete the node's data and drop it from the devnet.")
@_dir_option
def kill(name: str, wipe: bool, root: Path | None) -> None:
    """SIGKILL node NAME (a crash: no drain, no goodbye). `up` restarts it unless --wipe."""
    killed = Devnet(root).kill(name, wipe)
    click.echo(f"devnet: {name} {'killed' if killed else 'was not running'}" + (" and wiped" if wipe else ""))


@devnet.command()
@_dir_option
def down(root: Path | None) -> None:
    """Stop every node of the devnet (data is kept). With no devnet there is nothing to stop: exit 0."""
    d = Devnet(root)
    if not d.exists():
        click.echo(f"devnet: none at {d.root}; nothing to stop")
        return
    stopped = d.down()
    click.echo(f"devnet: stopped {len(stopped)} nodes")


def _what(r: dict[str, Any]) -> str:
    st = r.get("roles_status", {}).get("storage", {})
    space = f"{st.get('shares', 0)} shares, {human(st.get('used', 0))}" if st else ""
    rl = r.get("roles_status", {}).get("relay", {})
    if rl:
        space = (f"relay :{rl.get('port', '?')}, {rl.get('open', 0)} open / {rl.get('circuits', 0)} circuits, "
                 f"{human(rl.get('bytes_forwarded', 0))} forwarded")  # fmt: skip
    return space


@devnet.command()
@click.option("--metrics", "show_metrics", is_flag=True,
              help="Also show each node's Prometheus numbers (its /metrics on a loopback port): bytes stored and "
                   "served, requests, DHT contacts, repair queue, earnings.")
@json_option
@_dir_option
def status(show_metrics: bool, as_json: bool, root: Path | None) -> None:
    """List the nodes with their roles, health and the space they hold."""
    d = Devnet(root)
    rows = d.status()
    if as_json:
        emit({"nodes": [{"name": r["name"], "addr": r["addr"], "roles": r["roles"], "pid": r["pid"],
                         "node_id": r.get("node_id"), "health": r["health"], "status": r.get("roles_status", {})}
                        for r in rows]})  # fmt: skip
        return
    table = [("NAME", "ADDRESS", "ROLES", "NODE ID", "HEALTH", "HOLDS")]
    table += [(r["name"], r["addr"], ",".join(r["roles"]), r.get("node_id", "?")[:16],
               r["health"] if r["health"] in ("up", "down") else "unhealthy", _what(r)) for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        click.echo(clean("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[5]).rstrip())
    for r in rows:
        if r["health"] not in ("up", "down"):
            click.echo(clean(f"{r['name']}: {r['health']}"))
    up_count = sum(1 for r in rows if r["health"] == "up")
    click.echo(f"{up_count} of {len(rows)} node processes up: {up_summary([_Roles(r['roles']) for r in rows])}")
    if show_metrics:
        _metrics_table(d)


class _Roles:
    def __init__(self, roles: list[str]) -> None:
        self.roles = roles


def up_summary(nodes: Sequence[Any]) -> str:
    """'10 storage nodes + 1 validator + 6 relays + gateway': what a devnet runs, by role."""
    def count(role: str) -> int:
        return sum(1 for n in nodes if role in n.roles)

    def only(role: str) -> int:
        return sum(1 for n in nodes if list(n.roles) == [role])

    parts = [f"{count('storage')} storage node{'s' if count('storage') != 1 else ''}"]
    nval, nrel, ngw = count("validator"), only("relay"), count("gateway")
    if nval:
        parts.append(f"{nval} validator{'s' if nval != 1 else ''}" if nval > 1 else "validator")
    if nrel:
        parts.append(f"{nrel} relay{'s' if nrel != 1 else ''}")
    if ngw:
        parts.append("gateway" if ngw == 1 else f"{ngw} gateways")
    return " + ".join(parts)


def _metrics_table(d: Devnet) -> None:
    from veil.devnet.metrics import metrics_port, scrape, summary
    from veil.errors import VeilError

    click.echo(f"{'metrics':<10} {'port':>6} {'stored':>10} {'served':>10} {'requests':>9} {'contacts':>8} "
               f"{'repairq':>7} {'earned':>10}")
    for spec in d.specs():
        port = metrics_port(d, spec)
        if port is None:
            click.echo(f"{spec.name:<10} {'-':>6}  (no metrics port: not running, or started before metrics)")
            continue
        try:
            m = summary(scrape(port))
        except VeilError as e:
            click.echo(f"{spec.name:<10} {port:>6}  unreachable: {e}")
            continue
        c = {k: (human(v) if k in ("stored", "served") else f"{v:.0f}") for k, v in m.items()}
        click.echo(f"{spec.name:<10} {port:>6} {c.get('stored', '-'):>10} {c.get('served', '-'):>10} "
                   f"{c.get('requests', '-'):>9} {c.get('contacts', '-'):>8} {c.get('repair_queue', '-'):>7} "
                   f"{c.get('earned', '-'):>10}")


@devnet.command()
@click.argument("address")
@click.argument("amount")
@_dir_option
def faucet(address: str, amount: str, root: Path | None) -> None:
    """Pay AMOUNT of test money to ADDRESS from the devnet faucet."""
    from veil.devnet.ledger import faucet as pay
    from veil.ledger.address import decode_address
    from veil.ledger.amount import format_amount, parse_amount

    txid = pay(Devnet(root), decode_address(address), parse_amount(amount))
    click.echo(f"faucet: sent {format_amount(parse_amount(amount))} VEIL to {address} (tx {txid.hex()})")


commands = [devnet]
