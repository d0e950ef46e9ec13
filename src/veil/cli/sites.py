"""`veil site publish DIR --name NAME` and `veil proxy`: static sites under names, opened by any
browser through a local proxy (docs/specs/sites.md)."""

from __future__ import annotations

from pathlib import Path

import click

from veil.client.names import NameClient, default_floor_path
from veil.client.network import Network
from veil.client.sites import SiteReader, publish, site_alias
from veil.errors import UsageError
from veil.format.remote_text import clean
from veil.ledger.names import SITE, parse_name

from .common import human, open_network, progress_bar, wait_for_stop_signal
from .ledger_opts import connect, unlock, validator_option, wallet_option
from .node import parse_listen


@click.group()
def site() -> None:
    """Static sites: a folder published under a name (http://NAME.veil/ through `veil proxy`)."""


@site.command("publish")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--name", "name_", required=True, help="The name (or subname) whose site record points at the folder.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the site's read cap.")
@wallet_option
@validator_option
def publish_cmd(src: Path, name_: str, quiet: bool, wallet_path: Path | None, validator: str | None,
                network_path: Path | None) -> None:  # fmt: skip
    """Upload the directory SRC as NAME's site; publishing again updates the same folder in place.

    The site folder's write cap is kept as the alias site.NAME; the name's site record holds only
    its read cap."""
    name = parse_name(name_)
    if not src.is_dir():
        raise UsageError(f"{src}: not a directory (a site is published from a directory)")
    c = connect(validator, network_path)
    nc = NameClient(c, default_floor_path())
    try:
        res = nc.resolve(name)
        if res.status != "active":
            raise UsageError(f"{name}.veil is {res.status}: `veil name register {name}` first")
        w = unlock(wallet_path)
        if res.record is None or res.record.owner != w.address:
            raise UsageError(f"{name}.veil belongs to another address; its owner publishes its site")
        net = open_network(network_path, anon=False)
        warnings: list[str] = []
        total = sum(f.stat().st_size for f in src.rglob("*") if f.is_file() and not f.is_symlink())
        with progress_bar(f"publishing {src.name or src}", total, quiet) as bar:
            pub = publish(net, src, name, warnings.append, progress=bar)
        for line in warnings:
            click.echo(f"veil: warning: {clean(line)}", err=True)
        rcap = pub.wcap.read_cap().to_string()
        if res.get(SITE) != rcap:
            height = nc.set_record(w.key, name, SITE, rcap)
            note = f"site record set (block {height})"
        else:
            note = "updated in place (the site record already points at it)"
    finally:
        c.close()
    if quiet:
        click.echo(rcap)
        return
    click.echo(f"published {pub.stats.files} files, {human(pub.stats.bytes)} as http://{name}.veil/: {note}")
    click.echo(f"read cap:  {rcap}")
    click.echo(f"write cap: kept as the alias {site_alias(name)} (`veil alias list`)")


def _network(network_path: Path | None, direct: bool) -> tuple[Network, str]:
    net = open_network(network_path, anon=False)
    if direct:
        return net, "direct"
    if not net.relays():
        return net, "direct (the network lists no relays)"
    net = open_network(network_path, anon=True)
    return net, "over onion circuits"


@click.command()
@click.option("--listen", default="127.0.0.1:8118", show_default=True, help="HOST:PORT to listen on.")
@click.option("--pass-through", is_flag=True, help="Forward plain-HTTP requests for hosts outside .veil (else 403).")
@click.option("--direct", is_flag=True, help="Fetch from storage nodes directly, never over onion circuits.")
@validator_option
def proxy(listen: str, pass_through: bool, direct: bool, validator: str | None, network_path: Path | None) -> None:
    """A local HTTP proxy for browsers: http://NAME.veil/ served from NAME's site folder.

    Set the browser's HTTP proxy to --listen (e.g. chromium --proxy-server=http://127.0.0.1:8118).
    Names are checked against blocks signed by the validators; pages are fetched over onion
    circuits when the network has relays (--direct: never)."""
    from veil.gateway.site_proxy import start_proxy

    host, port = parse_listen(listen)
    net, how = _network(network_path, direct)
    c = connect(validator, network_path)
    reader = SiteReader(NameClient(c, default_floor_path()), lambda: net)
    try:
        srv = start_proxy(host, port, reader, pass_through)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(f"veil: warning: listening on {host}: anyone who can reach it may use this proxy", err=True)
    a, p = srv.server_address
    click.echo(f"proxy: serving .veil sites on http://{a}:{p} ({how}"
               f"{'; other hosts passed through' if pass_through else ''})", err=True)  # fmt: skip
    wait_for_stop_signal()
    srv.shutdown()
    srv.server_close()
    c.close()
    net.close()


commands = [site, proxy]
