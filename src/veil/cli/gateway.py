"""`veil gateway`: serve the web app and the browser API in front of a network."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from veil.errors import UsageError

from .common import network_option, wait_for_stop_signal
from .logopts import log_options, setup_service_logging
from .node import check_metrics_listen, metrics_options, parse_listen, trusted_proxy_option


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to serve HTTP on.")
@click.option("--tls-listen", default=None,
              help="HOST:PORT to also serve HTTPS on, each tenant's hosts with the cert/key the tenants file "
                   "gives it (chosen by SNI).")
@click.option("--tenants", "tenants_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="White-label tenants file (TOML); without it every host gets the default Veil brand.")
@click.option("-k", "k", type=int, default=3, show_default=True, help="Shares needed to read an uploaded file.")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Shares made per uploaded file.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request in the log: request id, visitor, tenant, method, path, status, bytes, "
                   "duration (never a key: keys never reach us).")
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Wallet that pays storage nodes which charge for downloads (passphrase: VEIL_PASSPHRASE). "
                   "Without it, such downloads are refused with 402.")
@click.option("--max-spend", default=None,
              help="Most VEIL the gateway spends on downloads while it runs (default: config payments.max_spend).")
@click.option("--max-price-per-gb", "max_price", default=None,
              help="Never pay a node asking more VEIL per GB than this (default: any price, within the budgets).")
@click.option("--visitor-budget", default=None,
              help="Most VEIL spent per day for one visitor (IP address); default max-spend/100; 'none' for no limit.")
@click.option("--file-budget", default=None,
              help="Most VEIL spent per day on one file; default max-spend/10; 'none' for no limit.")
@click.option("--anon", is_flag=True,
              help="Fetch and store through onion circuits of relays, so storage nodes cannot tell which "
                   "gateway serves which file (circuits are shared by the files the gateway serves).")
@click.option("--hops", type=click.IntRange(1, 5), default=3, show_default=True, help="Relays per circuit with --anon.")
@network_option
@trusted_proxy_option
@metrics_options
@log_options
def gateway(listen: str, tls_listen: str | None, tenants_path: Path | None, k: int, n: int, access_log: bool, wallet_path: Path | None,
            max_spend: str | None, max_price: str | None, visitor_budget: str | None, file_budget: str | None,
            anon: bool, hops: int, network_path: Path | None, trusted_proxies: tuple[str, ...],
            metrics_listen: str | None, metrics_public: bool, log_level: str | None, log_file: Path | None,
            verbose: bool) -> None:  # fmt: skip
    """Serve the web app: browsers encrypt before upload and decrypt after download.

    Put TLS in front of it (a reverse proxy) for anything but 127.0.0.1/localhost: browsers
    only give pages WebCrypto on secure origins.
    """
    from veil.gateway.app import Gateway, GatewayConfig
    from veil.gateway.pay import gateway_wallet
    from veil.gateway.proxies import TrustedProxies
    from veil.gateway.tenants import load_tenants
    from veil.node.metrics_http import MetricsListener

    setup_service_logging(log_level, log_file, verbose)
    # The access log is on at any --log-level unless --no-access-log.
    logging.getLogger("veil.gateway.access").setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    proxies = TrustedProxies(trusted_proxies)
    metrics_at = check_metrics_listen(metrics_listen, metrics_public)
    if not 1 <= k <= n <= 255:
        raise UsageError(f"-k/-n must satisfy 1 <= k <= n <= 255 (got {k}-of-{n})")
    host, port = parse_listen(listen)
    wallet = gateway_wallet(wallet_path, max_spend, max_price, visitor_budget, file_budget)
    gw = Gateway(GatewayConfig(network_path=network_path, tenants=load_tenants(tenants_path), k=k, n=n,
                               wallet=wallet, anon_hops=hops if anon else 0, trusted_proxies=proxies))
    try:
        gw.start(host, port)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    click.echo(f"gateway: serving {gw.url}", err=True)
    if tls_listen is not None:
        thost, tport = parse_listen(tls_listen)
        try:
            srv = gw.start_tls(thost, tport)
        except OSError as e:
            gw.stop()
            raise UsageError(f"cannot listen on {thost}:{tport}: {e.strerror or e}") from e
        except UsageError:
            gw.stop()
            raise
        click.echo(f"gateway: serving https://{thost}:{srv.server_address[1]}", err=True)
    metrics: MetricsListener | None = None
    if metrics_at:
        mhost, mport = parse_listen(metrics_at)
        metrics = MetricsListener(gw.metrics, gw.health)
        try:
            metrics.start(mhost, mport)
        except OSError as e:
            gw.stop()
            raise UsageError(f"cannot listen on {mhost}:{mport} (--metrics-listen): {e.strerror or e}") from e
        click.echo(f"gateway: metrics on {metrics.url}/metrics", err=True)
    wait_for_stop_signal()
    if metrics is not None:
        metrics.stop()
    gw.stop()


commands = [gateway]
