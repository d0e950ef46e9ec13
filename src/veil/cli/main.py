"""Entry point: builds the `veil` command from one module per command group."""

from __future__ import annotations

import ctypes
import importlib
import sys

import click

from veil import __version__
from veil.errors import VeilError
from veil.format.remote_text import clean

# Each module exposes ``commands``: a list of click commands/groups to add to `veil`.
COMMAND_MODULES = [
    "veil.cli.files",
    "veil.cli.folders",
    "veil.cli.alias",
    "veil.cli.node",
    "veil.cli.devnet",
    "veil.cli.bench",
    "veil.cli.sim",
    "veil.cli.wallet",
    "veil.cli.invoice",
    "veil.cli.channel",
    "veil.cli.ledger",
    "veil.cli.names",
    "veil.cli.sites",
    "veil.cli.gateway",
    "veil.cli.account",
    "veil.cli.lease",
    "veil.cli.circuits",
    "veil.cli.config",
    "veil.cli.completion",
    "veil.cli.s3",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="veil")
def cli() -> None:
    """Veil: end-to-end encrypted, erasure-coded file storage and sharing.

    Files are encrypted on your machine, split into shares and spread over storage
    nodes that never see plaintext, keys or file names. A cap or share link is all
    anyone needs to fetch a file back.
    """


def _load() -> None:
    for name in COMMAND_MODULES:
        mod = importlib.import_module(name)
        for cmd in mod.commands:
            cli.add_command(cmd)


def tune_malloc() -> None:
    """Keep large freed buffers in the heap instead of returning them to the kernel.

    The data path allocates many ~0.35-1 MiB buffers (erasure blocks, TLS reads); by default
    glibc mmaps each and unmaps it on free, so every new one page-faults. Measured here:
    pyeclib encode 0.24 GB/s by default, 4.1 GB/s with these settings (docs/specs/transport.md).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 512 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def main(argv: list[str] | None = None) -> None:
    tune_malloc()
    _load()
    try:
        cli.main(args=argv, prog_name="veil", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("veil: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except VeilError as e:
        click.echo(f"veil: error: {clean(e)}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("veil: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)


if __name__ == "__main__":
    main()
