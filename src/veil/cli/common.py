"""Shared CLI plumbing: network option, progress bars, size parsing, logging set-up."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from veil.client.network import Network, load_network
from veil.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)
WALLET_HELP = "Wallet file (default: $VEIL_WALLET, else $VEIL_HOME/wallet)."
PAY_WALLET_HELP = "Wallet that pays nodes that charge (default: $VEIL_WALLET, else $VEIL_HOME/wallet)."


def network_option(f: F) -> F:
    return click.option(
        "--network", "network_path", type=click.Path(path_type=Path), default=None,
        help="Network file listing the nodes (default: $VEIL_NETWORK, else $VEIL_HOME/devnet/network.json).",
    )(f)


def anon_options(f: F) -> F:
    f = click.option("--hops", type=int, default=None, metavar="N",
                     help="Relays per onion circuit, 1-5 (default: $VEIL_HOPS, [anon] hops, else 3).")(f)
    return click.option("--anon/--direct", "anon", default=None,
                        help="Send every node request over onion circuits of relays, so no storage node sees "
                             "your address (default: $VEIL_ANON, [anon] enabled in config.toml, else direct).")(f)


def open_network(path: Path | None, anon: bool | None = None, hops: int | None = None) -> Network:
    """The network file's nodes; with ``anon`` (or the anon setting when None) every storage and
    DHT request goes over onion circuits (TooFewRelays at once if the file lists too few relays)."""
    from veil.client.config import anon_setting, gateway_setting

    from .signer import ticket_signer

    net = load_network(path)
    net.gateway = gateway_setting(net.gateway)
    net.tickets = ticket_signer(None, net)  # nodes that admit by ticket: the wallet, if one asks (signer.py)
    use, n = anon_setting(anon, hops)  # None: VEIL_ANON / [anon] in config.toml decide
    if use:  # VEIL_ANON_SOURCE: the local address circuits leave from (multi-homed hosts, the tests)
        net.use_circuits(n, source=os.environ.get("VEIL_ANON_SOURCE") or None)
    return net


class Bar:
    """What a progress bar gives its user: call it with bytes done; set the total once known."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None,
                 describe: Callable[[], str | None] | None = None) -> None:  # fmt: skip
        self._p, self._task, self._describe = progress, task, describe

    def __call__(self, n: int) -> None:
        if self._p is None or self._task is None:
            return
        desc = self._describe() if self._describe is not None else None
        if desc:
            self._p.update(self._task, advance=n, description=desc)
        else:
            self._p.advance(self._task, n)

    def set_total(self, total: int) -> None:
        if self._p is not None and self._task is not None:
            self._p.update(self._task, total=total)


@contextlib.contextmanager
def progress_bar(
    label: str, total: int | None, quiet: bool = False, describe: Callable[[], str | None] | None = None
) -> Iterator[Bar]:
    """A rich progress bar on stderr when it is a terminal; silent otherwise.

    ``describe`` may return a fresh description (e.g. money spent so far) at each update."""
    if quiet or not sys.stderr.isatty():
        yield Bar()
        return
    with make_progress(err_console) as p:
        yield Bar(p, p.add_task(label, total=total), describe)


def make_progress(console: Console) -> Progress:
    """The bar every transfer shows: it fits the terminal (80 columns too): the description is
    cut with an ellipsis rather than wrapped, and the bar takes only what is left."""
    return Progress(
        TextColumn("[progress.description]{task.description}", table_column=Column(ratio=2, no_wrap=True,
                                                                                   overflow="ellipsis")),
        BarColumn(bar_width=None, table_column=Column(ratio=1)), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=console, transient=True, expand=True,
    )


def link_text(link: str | None) -> str:
    return link or "(no gateway configured: `veil config set gateway URL` to get share links)"


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")


def direct_only(what: str) -> None:
    """Refuse a command that talks to nodes directly when the user asked for anonymity."""
    from veil.client.config import anon_setting

    if anon_setting(None, None)[0]:
        raise UsageError(f"{what} talks to the nodes directly, not over onion circuits yet: "
                         "unset VEIL_ANON / [anon] enabled for it")


def wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT (a `serve`-style command's main loop; the caller then stops
    what it started)."""
    import signal
    import threading

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopped.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stopped.set())
    stopped.wait()
