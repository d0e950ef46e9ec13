"""`veil bench anon`: the same file directly and over onion circuits, in one run on one devnet.

A fresh devnet in a temporary directory (storage nodes, relays, a validator and a gateway, real
processes over TLS on 127.0.0.1). In this process, with the client library: upload and download
a random file directly, then over ``--hops``-hop circuits (a new Network, so new circuits, per
transfer), best of ``--rounds``; build ``--builds`` circuits to a storage node and report their
build time; time a small request (GET /v1/node, a few hundred bytes) on a warm connection
directly and over 1..hops-hop circuits, and report the added latency per hop (p50).
Everything shares the same loaded cores: the devnet's processes, the relays and the client.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from veil.client.download import download
from veil.client.network import Network, load_network
from veil.client.upload import upload
from veil.devnet.manager import Devnet
from veil.net.circuit_transport import CircuitTransport
from veil.net.storage_transport import TlsTransport

from .transfer import MB, MiB


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _transfer(path: Path, data: bytes, hops: int, rounds: int) -> tuple[float, float]:
    """Best upload and download throughput (bytes/s) over ``rounds``, hops 0 = direct."""
    up = down = 0.0
    for r in range(rounds):
        net = _net(path, hops)
        try:
            t0 = time.perf_counter()
            cap = upload(net, io.BytesIO(data), len(data), f"bench-{hops}-{r}", k=3, n=5, happy=5).cap
            up = max(up, len(data) / (time.perf_counter() - t0))
        finally:
            net.close()
        net = _net(path, hops)
        out = io.BytesIO()
        try:
            t0 = time.perf_counter()
            download(net, cap, out)
            down = max(down, len(data) / (time.perf_counter() - t0))
        finally:
            net.close()
        if out.getvalue() != data:
            raise click.ClickException("a download came back different")
    return up, down


def _net(path: Path, hops: int) -> Network:
    net = load_network(path)
    if hops:
        net.use_circuits(hops)
    return net


def _latency(net: Network, hops: int, count: int) -> float:
    node = net.storage_nodes()[0]
    t: TlsTransport = CircuitTransport(net.relays(), hops) if hops else TlsTransport()
    try:
        peer = t.peer(node)
        peer.request("GET", "/v1/node")  # connect (and build the circuit) first
        xs = []
        for _ in range(count):
            t0 = time.perf_counter()
            peer.request("GET", "/v1/node")
            xs.append(time.perf_counter() - t0)
        return statistics.median(xs)
    finally:
        t.close()


def _builds(net: Network, hops: int, count: int) -> list[float]:
    node = net.storage_nodes()[0]
    xs = []
    for _ in range(count):
        t = CircuitTransport(net.relays(), hops)
        sock = t.open_circuit(node)
        xs.append(t.build_times[-1])
        sock.close()
        t.close()
    return xs


def run_anon(size: int, hops: int, nodes: int, relays: int, rounds: int, builds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="veil-bench-anon-") as tmp:
        d = Devnet(Path(tmp) / "devnet")
        try:
            d.up(nodes, ["storage"], [], relays=relays)
            path = d.static_network_path
            data = os.urandom(size)
            res: dict[str, Any] = {"size": size, "hops": hops, "nodes": nodes, "relays": relays,
                                   "load_before": os.getloadavg()[0]}  # fmt: skip
            res["direct_up"], res["direct_down"] = _transfer(path, data, 0, rounds)
            res["anon_up"], res["anon_down"] = _transfer(path, data, hops, rounds)
            net = load_network(path)
            bt = _builds(net, hops, builds)
            res["build_p50"], res["build_p99"] = _pct(bt, 0.5), _pct(bt, 0.99)
            res["latency"] = {h: _latency(net, h, 50) for h in range(hops + 1)}
            res["load_after"] = os.getloadavg()[0]
            return res
        finally:
            d.down()


@click.command("anon")
@click.option("--size", default=64, show_default=True, help="File size in MiB.")
@click.option("--hops", default=3, show_default=True, type=click.IntRange(1, 5))
@click.option("--nodes", default=5, show_default=True, help="Storage nodes (files are 3-of-5).")
@click.option("--relays", default=6, show_default=True)
@click.option("--rounds", default=1, show_default=True, help="Transfers each way and mode; the best counts.")
@click.option("--builds", default=40, show_default=True, help="Circuits built for the build-time figures.")
@click.option("--json", "as_json", is_flag=True)
def anon_cmd(size: int, hops: int, nodes: int, relays: int, rounds: int, builds: int, as_json: bool) -> None:
    """Direct against onion-circuit transfers and circuit costs on a fresh devnet (targets: 3-hop
    download >= 30% of direct, build <= 100 ms p50, <= 2 ms added per hop p50)."""
    if relays < hops:
        raise click.UsageError(f"--relays must be at least --hops ({hops})")
    r = run_anon(size * MiB, hops, nodes, relays, rounds, builds)
    if as_json:
        click.echo(json.dumps(r))
        return
    lat = r["latency"]
    per_hop = (lat[hops] - lat[0]) / hops
    click.echo(f"file {size} MiB, 3-of-5 on {nodes} nodes, {relays} relays, {hops}-hop circuits "
               f"(load average {r['load_before']:.1f} -> {r['load_after']:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    click.echo(f"upload:    direct {r['direct_up'] / MB:7.1f} MB/s   anon {r['anon_up'] / MB:7.1f} MB/s   "
               f"ratio {r['anon_up'] / r['direct_up']:.2f}")  # fmt: skip
    click.echo(f"download:  direct {r['direct_down'] / MB:7.1f} MB/s   anon {r['anon_down'] / MB:7.1f} MB/s   "
               f"ratio {r['anon_down'] / r['direct_down']:.2f}   (target >= 0.30)")  # fmt: skip
    click.echo(f"circuit build: p50 {r['build_p50'] * 1000:.1f} ms, p99 {r['build_p99'] * 1000:.1f} ms "
               f"over {builds} builds   (target p50 <= 100 ms)")  # fmt: skip
    click.echo("small request p50: " + ", ".join(f"{h} hops {v * 1000:.2f} ms" for h, v in lat.items()))
    click.echo(f"added latency per hop: {per_hop * 1000:.2f} ms p50   (target <= 2 ms)")
