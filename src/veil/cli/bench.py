"""`veil bench …`: benchmarks that measure this machine's ceilings in the same run."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Benchmarks that measure this machine's ceilings in the same run and print ratios."""


def _register() -> None:
    from veil.bench.abuse import abuse_cmd
    from veil.bench.anon import anon_cmd
    from veil.bench.browser_upload import browser_upload_cmd
    from veil.bench.datapath import datapath_cmd
    from veil.bench.folders import folders_cmd
    from veil.bench.gateway import gateway_cmd
    from veil.bench.invoices import invoices_cmd
    from veil.bench.ledger import ledger_cmd
    from veil.bench.names import names_cmd
    from veil.bench.s3 import s3_cmd
    from veil.bench.small import small_cmd
    from veil.bench.store import store_cmd

    bench.add_command(datapath_cmd)
    bench.add_command(ledger_cmd)
    bench.add_command(gateway_cmd)
    bench.add_command(small_cmd)
    bench.add_command(store_cmd)
    bench.add_command(abuse_cmd)
    bench.add_command(anon_cmd)
    bench.add_command(folders_cmd)
    bench.add_command(invoices_cmd)
    bench.add_command(names_cmd)
    bench.add_command(browser_upload_cmd)
    bench.add_command(s3_cmd)


_register()
commands = [bench]
