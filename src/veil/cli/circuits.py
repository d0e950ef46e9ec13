"""`veil circuits`: build onion circuits to storage nodes now and show them (a diagnostic).

A `veil` command holds its circuits only while it runs, so this shows what a transfer would
get: one circuit per storage node (up to --count), each with its relays by name and node id
and its build time, then what failed on the way. Exit 0 if every circuit was built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from veil.errors import VeilError
from veil.format.remote_text import clean

from .common import network_option, open_network


@click.command()
@click.option("--hops", type=int, default=None, metavar="N", help="Relays per circuit, 1-5 (default: as --anon would).")
@click.option("--count", type=click.IntRange(1, 64), default=5, show_default=True, help="Storage nodes to build circuits to.")
@network_option
def circuits(hops: int | None, count: int, network_path: Path | None) -> None:
    """Build a circuit to each of COUNT storage nodes and print its hops and build time."""
    net = open_network(network_path, True, hops)
    t = net.anon
    assert t is not None
    try:
        nodes = net.storage_nodes_for(os.urandom(16))[:count]
        relays = t.relays
        click.echo(f"{len(relays)} relays known; {t.hops}-hop circuits to {len(nodes)} storage nodes:")
        failed = 0
        for node in nodes:
            try:
                sock = t.open_circuit(node)
            except VeilError as e:
                failed += 1
                click.echo(f"  {clean(node.label):<24} FAILED: {clean(e)}")
                continue
            c = t.circuits[-1]
            path = " > ".join(f"{clean(h.name or h.host)} ({h.node_id.hex()[:8]})" for h in c.relays)
            click.echo(f"  {clean(node.label):<24} via {path}  built in {(c.machine.ready_after or 0) * 1000:.1f} ms")
            sock.close()
        for w in net.warnings():
            click.echo(f"veil: warning: {clean(w)}", err=True)
    finally:
        net.close()
    if failed:
        sys.exit(5)


commands = [circuits]
