"""`veil bench …`: benchmarks that measure this machine's ceilings in the same run."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Benchmarks that measure this machine's ceilings in the same run and print ratios."""


commands = [bench]
