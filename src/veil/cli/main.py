"""Entry point: builds the `veil` command from one module per command group."""

from __future__ import annotations

import importlib
import sys

import click

from veil import __version__
from veil.errors import VeilError

# Each module exposes ``commands``: a list of click commands/groups to add to `veil`.
COMMAND_MODULES = [
    "veil.cli.files",
    "veil.cli.node",
    "veil.cli.devnet",
    "veil.cli.bench",
    "veil.cli.sim",
    "veil.cli.wallet",
    "veil.cli.channel",
    "veil.cli.ledger",
    "veil.cli.gateway",
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


def main(argv: list[str] | None = None) -> None:
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
        click.echo(f"veil: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("veil: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)


if __name__ == "__main__":
    main()
