"""`veil node run`: run one node process."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from veil.crypto.idpuzzle import DEFAULT_ID_BITS
from veil.format.textparse import parse_hostport, parse_size

from .logopts import log_options, setup_service_logging
from .node_pay import earnings, payment_config

if TYPE_CHECKING:
    from veil.node.context import Role
    from veil.node.main import Node, RoleFactory


def parse_listen(text: str) -> tuple[str, int]:
    return parse_hostport(text, "--listen", allow_zero=True)


def _gateway_role() -> Role:
    from veil.gateway.role import GatewayRole

    return GatewayRole()


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def announce(node: Node) -> None:
    """What `veil node run` prints once it listens (stdout): the real addresses, also for port 0."""
    ctx = node.ctx
    click.echo(f"veil node: {ctx.node_id.hex()[:16]} listening on {hostport(ctx.host, ctx.port)} "
               f"(roles {','.join(r.name for r in node.roles)}, pid {os.getpid()})")
    for role in node.roles:
        st = role.status()
        if role.name == "gateway" and st.get("url"):
            click.echo(f"veil node: gateway on {st['url']}")
        if role.name == "relay":
            click.echo(f"veil node: relay on {hostport(ctx.host, st['port'])}")
    if node.metrics_listener is not None:
        click.echo(f"veil node: metrics on {node.metrics_listener.url}/metrics")
    sys.stdout.flush()


def metrics_options(f: Any) -> Any:
    f = click.option("--metrics-public", is_flag=True,
                     help="Allow --metrics-listen on a non-loopback address (metrics show traffic volumes).")(f)
    return click.option("--metrics-listen", default=None, metavar="HOST:PORT",
                        help="Serve Prometheus /metrics and /healthz over plain HTTP on HOST:PORT (off by default; "
                             "loopback unless --metrics-public; port 0: any free one, printed, and for a node in node.json).")(f)


def check_metrics_listen(text: str | None, public: bool) -> str | None:
    if not text:
        return None
    from veil.node.metrics_http import check_metrics_address

    host, _ = parse_hostport(text, "--metrics-listen", allow_zero=True)
    check_metrics_address(host, public)
    return text


def trusted_proxy_option(f: Any) -> Any:
    return click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="CIDR",
                        help="A reverse proxy whose Forwarded / X-Forwarded-For headers name the gateway's visitor "
                             "(repeatable; e.g. 127.0.0.1/32). Others' such headers are ignored.")(f)


def _advertise(text: str | None) -> str | None:
    if not text:
        return None
    host, port = parse_hostport(text, "--advertise")
    return hostport(host, port)


def _sweep_rate(text: str | None) -> float | None:
    if not text:
        return None
    from veil.node.repair_limits import parse_sweep_rate

    return parse_sweep_rate(text)


def role_table() -> dict[str, RoleFactory]:
    """Every role `veil node run --role` knows: the node package's, plus the gateway (which
    lives above node, so node cannot name it)."""
    from veil.node.main import NODE_ROLES

    return {**NODE_ROLES, "gateway": _gateway_role}


@click.group()
def node() -> None:
    """Run and manage a Veil node."""


@node.command("run")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Data directory.")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT to serve on.")
@click.option("--role", "roles", default="storage", show_default=True, help="Comma-separated roles to run.")
@click.option("--capacity", default=None, help="Most bytes of shares to keep (e.g. 10GB; default: the disk's free space).")
@click.option("--storage-admission", type=click.Choice(["open", "ticket"]), default="ticket", show_default=True,
              help="Who may store: only uploads with a storage ticket within the account's free storage quota "
                   "on the ledger (needs --validator), or anyone ('open': one client can fill the disk).")
@click.option("--operator", default=None, metavar="LABEL",
              help="The operator (family) this node declares in its signed node record, 1-64 of a-z 0-9 . _ -: "
                   "placement and repair put one share per family first, and a network file's label for the "
                   "node overrides it.")
@click.option("--account-quota", default=None, metavar="SIZE",
              help="Storage role, ticket admission: most bytes one account may keep on this node, whatever its "
                   "stake buys (e.g. 50GB; default: a quarter of --capacity, else no cap beyond the ledger's).")
@click.option("--gateway-listen", default=None, help="Gateway role: HOST:PORT for browsers (plain HTTP; default 127.0.0.1:8080).")
@click.option("--tenants", default=None, help="Gateway role: white-label tenants file (TOML).")
@click.option("--network", "network_path", default=None, help="Gateway role: the network file (default: the devnet's).")
@click.option("--gateway-wallet", default=None,
              help="Gateway role: wallet paying nodes that charge for downloads (passphrase: VEIL_PASSPHRASE).")
@click.option("--gateway-max-spend", default=None, help="Gateway role: most VEIL spent on downloads while running.")
@click.option("--gateway-max-price", default=None, help="Gateway role: never pay a node asking more VEIL per GB.")
@click.option("--gateway-visitor-budget", default=None,
              help="Gateway role: most VEIL per visitor per day (default max-spend/100; 'none').")
@click.option("--gateway-file-budget", default=None,
              help="Gateway role: most VEIL per file per day (default max-spend/10; 'none').")
@click.option("--bootstrap", default=None, help="HOST:PORT[,...] of nodes to join the DHT through (turns on the dht role).")
@click.option("--advertise", default=None, metavar="HOST:PORT",
              help="DHT role: the address other nodes should use for this one (default: --listen; set it when "
                   "listening on 0.0.0.0 or behind NAT).")
@click.option("--dht-peer-rate", type=float, default=None,
              help="DHT requests per second allowed from one peer address (raise on a devnet: all peers are 127.0.0.1).")
@click.option("--id-bits", type=click.IntRange(0, 40), default=DEFAULT_ID_BITS, envvar="VEIL_ID_BITS", show_default=True,
              help="The network's node-id puzzle: a new identity is ground until its id solves it (about "
                   "2^BITS key generations), and peers whose ids do not are refused (docs/specs/dht.md).")
@click.option("--repair-interval", type=float, default=None,
              help="Repairer role: seconds between two background checks of one file, and between scans of the "
                   "store and liveness probes of the peers its files depend on (default 3600).")
@click.option("--repair-sweep-rate", default=None,
              help="Repairer role: at most this many background file checks per minute (default 30); departed "
                   "holders trigger checks at once, outside this budget.")
@click.option("--repair-wallet", default=None,
              help="Repairer role: wallet paying nodes that charge for the blocks it reads and signing the storage "
                   "tickets of the shares it places (passphrase: VEIL_PASSPHRASE). Default: with --validator, the "
                   "node's own account; 'none': never pay.")
@click.option("--repair-max-spend", default=None,
              help="Repairer role: most VEIL spent on repairs while running (default: [payments] max_spend).")
@click.option("--repair-threshold", default=None, help="Repairer role: repair below this many healthy shares: happy (default), n, or a count.")
@click.option("--price-per-gb", default=None, help="Charge for downloads: VEIL per GB served (turns on the payments role).")
@click.option("--lease-price-per-gb-day", default=None, help="Payments role: VEIL per GB kept per day under a lease.")
@click.option("--free-credit", default=None, help="Payments role: unsettled free-tier bytes taken per downloader (e.g. 16MB).")
@click.option("--validator", default=None, metavar="NODEID@HOST:PORT[,...]",
              help="Payments role: the ledger's validators (pinned by node id).")
@click.option("--validators", default=None, metavar="NODEID@HOST:PORT[,...]",
              help="Validator role: members of the cluster to join (a new member learns the validator set from them).")
@click.option("--folder-versions", type=click.IntRange(1, 1000), default=None,
              help="Mutable role: versions kept of each folder, the current one included (default 10).")
@click.option("--http-limit", "http_limits", multiple=True, metavar="KEY=VALUE",
              help="A bound of the node's HTTP server, e.g. workers=64, max_per_ip=256, head_timeout=5 "
                   "(repeatable; docs/specs/transport.md lists them).")
@click.option("--relay-port", type=click.IntRange(0, 65535), default=0,
              help="Relay role: port of the circuit listener (default: any free port; node.json names it).")
@click.option("--relay-max-per-ip", type=click.IntRange(1, 100000), default=None,
              help="Relay role: circuits open at once from one predecessor address (default 32).")
@click.option("--relay-announce", default=None, metavar="HOST:PORT[,...]",
              help="Relay role: DHT nodes to announce this relay through (a signed record in the relay "
                   "directory, where clients in DHT mode find relays).")
@click.option("--relay-rate", default=None, metavar="SIZE",
              help="Relay role: most bytes per second one circuit may move (e.g. 5MB; default: no bound).")
@metrics_options
@trusted_proxy_option
@log_options
def run(data_dir: Path, listen: str, roles: str, capacity: str | None, storage_admission: str,
        operator: str | None, account_quota: str | None, gateway_listen: str | None, tenants: str | None,
        network_path: str | None, gateway_wallet: str | None, gateway_max_spend: str | None,
        gateway_max_price: str | None, gateway_visitor_budget: str | None, gateway_file_budget: str | None,
        bootstrap: str | None, advertise: str | None, dht_peer_rate: float | None, id_bits: int, repair_interval: float | None, repair_sweep_rate: str | None,
        repair_wallet: str | None, repair_max_spend: str | None, repair_threshold: str | None, price_per_gb: str | None, lease_price_per_gb_day: str | None,
        free_credit: str | None, validator: str | None, validators: str | None, folder_versions: int | None,
        http_limits: tuple[str, ...], relay_port: int, relay_max_per_ip: int | None, relay_announce: str | None,
        relay_rate: str | None, metrics_listen: str | None, metrics_public: bool, trusted_proxies: tuple[str, ...],
        log_level: str | None, log_file: Path | None, verbose: bool) -> None:  # fmt: skip
    """Run a node with the given roles until SIGTERM.

    Roles: storage, dht, repairer, payments, mutable, validator, gateway, and relay (carries
    onion circuits for `veil put/get --anon`; it extends only to nodes in --network or its DHT).

    Prints the address it listens on (stdout); logs to stderr and --log-file
    (docs/specs/operations.md)."""
    from veil.net.wire import parse_limits
    from veil.node.context import NodeConfig
    from veil.node.main import run_node

    setup_service_logging(log_level, log_file, verbose)
    host, port = parse_listen(listen)
    from veil.gateway.proxies import parse_proxies

    parse_proxies(trusted_proxies)  # one clear line for a bad CIDR, before anything starts
    config = NodeConfig(
        capacity=parse_size(capacity) if capacity else None,
        gateway_listen=gateway_listen or None,
        tenants=Path(tenants) if tenants else None,
        network=Path(network_path) if network_path else None,
        gateway_wallet=Path(gateway_wallet) if gateway_wallet else None,
        gateway_max_spend=gateway_max_spend or None,
        gateway_max_price=gateway_max_price or None,
        gateway_visitor_budget=gateway_visitor_budget or None,
        gateway_file_budget=gateway_file_budget or None,
        dht_peer_rate=dht_peer_rate or None,
        dht_advertise=_advertise(advertise),
        id_bits=id_bits,
        repair_interval=repair_interval or None,
        repair_threshold=repair_threshold or None,
        repair_sweep_rate=_sweep_rate(repair_sweep_rate),
        repair_wallet=Path(repair_wallet) if repair_wallet else None,
        repair_max_spend=repair_max_spend or None,
        http_limits=parse_limits(http_limits) if http_limits else None,
        folder_versions=folder_versions,
        relay_port=relay_port,
        relay_max_per_ip=relay_max_per_ip,
        relay_announce=tuple(a.strip() for a in (relay_announce or "").split(",") if a.strip()),
        relay_rate=parse_size(relay_rate) if relay_rate else None,
        metrics_listen=check_metrics_listen(metrics_listen, metrics_public),
        gateway_trusted_proxies=tuple(trusted_proxies),
    )
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    if operator is not None:
        from veil.dht.records import check_operator

        try:
            config = replace(config, operator=check_operator(operator))
        except ValueError as e:
            raise click.UsageError(f"--operator: {e}") from e
    if storage_admission == "ticket" and "storage" in role_list:
        if not validator:
            raise click.UsageError(
                "a storage node admits shares only with storage tickets (the default), which needs the ledger "
                "holding the quotas: pass --validator NODEID@HOST:PORT[,...], or --storage-admission open to "
                "store for anyone"
            )
        from veil.client.ledger_client import parse_endpoints

        parse_endpoints(validator)  # pinned, or refused here
        config = replace(config, storage_admission="ticket", validator=validator,
                         account_quota=parse_size(account_quota) if account_quota else None)
    elif account_quota:
        raise click.UsageError("--account-quota needs storage ticket admission (--storage-admission ticket)")
    else:
        config = replace(config, storage_admission="open")
    if repair_threshold:
        from veil.node.repair_limits import parse_threshold

        parse_threshold(repair_threshold)
    if "relay" in role_list and not (network_path or relay_announce or bootstrap):
        raise click.UsageError("the relay role needs --network FILE or --relay-announce HOST:PORT "
                               "(it extends circuits only to nodes it knows from them)")
    if validators:
        from veil.client.ledger_client import parse_endpoints

        parse_endpoints(validators)  # pinned, or refused here
        config = replace(config, validators=tuple(v.strip() for v in validators.split(",") if v.strip()))
        if "validator" not in role_list:
            role_list.append("validator")
    if bootstrap:
        config = replace(config, bootstrap=tuple(a.strip() for a in bootstrap.split(",") if a.strip()))
        if "dht" not in role_list:
            role_list.append("dht")
    if price_per_gb is not None:
        config = payment_config(config, price_per_gb, lease_price_per_gb_day, free_credit, validator)
        if "payments" not in role_list:
            role_list.append("payments")
    run_node(data_dir, host, port, role_list, config, role_table(), on_started=announce)


@node.command("drain")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data directory of the running node to drain.")
@click.option("--no-stop", is_flag=True, help="Leave the node running (taking no new shares) after the drain.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Seconds to wait for the drain.")
def drain(data_dir: Path, no_stop: bool, timeout: float) -> None:
    """Leave the network gracefully: hand every share to other nodes, then stop the node."""
    from veil.node.drain_control import drain_node

    st = drain_node(data_dir, stop=not no_stop, timeout=timeout)
    click.echo(f"drain: {st['moved']} shares handed over" + ("" if no_stop else "; node stopped"))
    for k in st.get("damaged", []):
        click.echo(f"veil: warning: damaged local share not handed over: {k}", err=True)
    for k in st.get("kept", []):
        click.echo(f"veil: warning: kept {k}", err=True)
    if st.get("kept"):
        sys.exit(1)


node.add_command(earnings)
commands = [node]
