"""`veil bench small`: many small files through a fresh 10-node devnet, beside this machine's
ceilings for the job, measured in the same run, and the devnet's idle CPU afterwards.

Put and get go through the public client API (veil.client.upload.upload /
veil.client.download.download) over one long-running Network, one file at a time and with
``--inflight`` threads sharing that Network (so keep-alive connections are shared). The
ceilings: the p50 round trip of an empty request (GET /v1/node) over one pinned keep-alive
TLS connection to one node, and fsyncs per second on the disk that holds the nodes' data.
Then the devnet is topped up to ``--idle-files`` stored files, the client closes, and each
node process's CPU time (/proc/PID/stat utime+stime) is sampled over ``--idle-seconds``.

The pure parts (percentiles, summaries, ratios, option parsing) have no I/O and are unit-tested.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from veil.client.download import download
from veil.client.network import Network, load_network
from veil.client.upload import upload
from veil.devnet.manager import Devnet
from veil.errors import UsageError
from veil.format.caps import ReadCap
from veil.net.client import PeerClient

KiB = 1024
TARGETS = {"put_p50_ms": 30.0, "get_p50_ms": 10.0, "put_files_per_s_16": 300.0, "get_files_per_s_16": 600.0,
           "idle_cpu_percent": 1.0}


# -- pure parts ---------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError("percentile outside 0..100")
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    files: int
    wall_s: float
    p50_ms: float
    p99_ms: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, float]:
        return {"files": self.files, "wall_s": self.wall_s, "files_per_s": self.files_per_s,
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms}


def summarize(latencies_s: Sequence[float], wall_s: float) -> Summary:
    return Summary(len(latencies_s), wall_s, percentile(latencies_s, 50) * 1000, percentile(latencies_s, 99) * 1000)


def ratios(s: Summary, rtt_ms: float, fsyncs_per_s: float) -> dict[str, float]:
    """How far a phase is from the ceilings: p50 latency in empty round trips and in fsyncs, and
    files per second as a fraction of fsyncs per second (one fsync per file is the floor of
    a durable put on one disk, as one round trip is the floor of its latency)."""
    fsync_ms = 1000 / fsyncs_per_s if fsyncs_per_s > 0 else float("inf")
    return {"p50_in_round_trips": s.p50_ms / rtt_ms if rtt_ms > 0 else float("inf"),
            "p50_in_fsyncs": s.p50_ms / fsync_ms,
            "files_per_s_over_fsyncs_per_s": s.files_per_s / fsyncs_per_s if fsyncs_per_s > 0 else 0.0}


def parse_sizes(text: str) -> list[int]:
    """``"64,4"`` (KiB) -> [65536, 4096]; one clear error for anything else."""
    out = []
    for part in text.split(","):
        p = part.strip().lower().removesuffix("kib").removesuffix("k")
        if not p.isdigit() or not 1 <= int(p) <= 1024:
            raise UsageError(f"bad file size {part.strip()!r}: give sizes in KiB, 1..1024, separated by commas")
        out.append(int(p) * KiB)
    if len(set(out)) != len(out):
        raise UsageError("a file size is given twice")
    return out


def cpu_percent(ticks_before: int, ticks_after: int, seconds: float, clk_tck: int) -> float:
    """Percent of one core used between two readings of utime+stime (in clock ticks)."""
    if seconds <= 0:
        raise ValueError("no time elapsed")
    return 100.0 * (ticks_after - ticks_before) / clk_tck / seconds


def parse_proc_stat(text: str) -> int:
    """utime + stime (clock ticks) from the text of /proc/PID/stat (the name may hold spaces)."""
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of the whole line


# -- measurements -------------------------------------------------------------------------


def rtt_ceiling(node: Any, count: int = 300) -> float:
    """p50 milliseconds of GET /v1/node over one pinned keep-alive TLS connection."""
    c = PeerClient(node.host, node.port, node.node_id)
    try:
        for _ in range(20):
            c.request("GET", "/v1/node")
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            c.request("GET", "/v1/node")
            times.append(time.perf_counter() - t0)
    finally:
        c.close()
    return percentile(times, 50) * 1000


def fsync_ceiling(where: Path, seconds: float = 1.0) -> float:
    """fsyncs per second of 4 KiB appends to one file in ``where``."""
    path = where / "fsync-probe"
    block = os.urandom(4 * KiB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        count = 0
        t0 = time.perf_counter()
        while (dt := time.perf_counter() - t0) < seconds:
            os.write(fd, block)
            os.fsync(fd)
            count += 1
        return count / dt
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def _content(seed: int, size: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(8, "big")).digest(size)


def _run_phase(jobs: list[Callable[[], None]], inflight: int) -> Summary:
    lat: list[float] = []
    lock = threading.Lock()

    def timed(job: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        job()
        dt = time.perf_counter() - t0
        with lock:
            lat.append(dt)

    t0 = time.perf_counter()
    if inflight <= 1:
        for j in jobs:
            timed(j)
    else:
        with ThreadPoolExecutor(max_workers=inflight) as ex:
            for f in [ex.submit(timed, j) for j in jobs]:
                f.result()
    return summarize(lat, time.perf_counter() - t0)


class Workload:
    """Files put and got through one Network; remembers each cap and its content's hash."""

    def __init__(self, net: Network, k: int, n: int) -> None:
        self.net, self.k, self.n = net, k, n
        self.stored: list[tuple[ReadCap, int, int]] = []  # cap, seed, size
        self._lock = threading.Lock()
        self._seed = 0

    def put_jobs(self, count: int, size: int) -> list[Callable[[], None]]:
        seeds = range(self._seed, self._seed + count)
        self._seed += count

        def put(seed: int) -> None:
            data = _content(seed, size)
            res = upload(self.net, io.BytesIO(data), size, f"f{seed}.bin", k=self.k, n=self.n)
            with self._lock:
                self.stored.append((res.cap, seed, size))

        return [lambda s=s: put(s) for s in seeds]  # type: ignore[misc]

    def get_jobs(self, files: list[tuple[ReadCap, int, int]]) -> list[Callable[[], None]]:
        def get(cap: ReadCap, seed: int, size: int) -> None:
            out = io.BytesIO()
            download(self.net, cap, out)
            if out.getvalue() != _content(seed, size):
                raise click.ClickException("a downloaded file differs from what was uploaded")

        return [lambda f=f: get(*f) for f in files]  # type: ignore[misc]


def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of a core each process used over ``seconds`` (processes that vanish are left out)."""
    clk = os.sysconf("SC_CLK_TCK")

    def read(pid: int) -> int | None:
        try:
            return parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
        except (OSError, ValueError):
            return None

    before = {name: read(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    out = {}
    for name, pid in pids.items():
        a, b = before[name], read(pid)
        if a is not None and b is not None:
            out[name] = cpu_percent(a, b, dt, clk)
    return out


def run(files: int, sizes: list[int], nodes: int, k: int, n: int, inflight: int, idle_files: int,
        idle_seconds: float, node_args: list[str], echo: Callable[[str], None], discovery: str = "dht",
        settle_seconds: float = 0.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="veil-bench-small-") as t:
        root = Path(t)
        d = Devnet(root / "devnet")
        echo(f"starting a {nodes}-node devnet ...")
        d.up(nodes, ["storage"], node_args)
        try:
            return _measure(d, files, sizes, k, n, inflight, idle_files, idle_seconds, echo, discovery, settle_seconds)
        finally:
            d.down()


def _measure(d: Devnet, files: int, sizes: list[int], k: int, n: int, inflight: int, idle_files: int,
             idle_seconds: float, echo: Callable[[str], None], discovery: str, settle_seconds: float) -> dict[str, Any]:
    static = load_network(d.static_network_path)
    storage = [x for x in static.nodes if "storage" in x.roles]
    rtt = rtt_ceiling(storage[0])
    fsyncs = fsync_ceiling(d.root)
    echo(f"ceilings: empty round trip p50 {rtt:.2f} ms, {fsyncs:.0f} fsyncs/s")
    # network.json is what `veil put` reads by default (storage nodes found through the DHT);
    # nodes.json lists every node (the static fast path).
    net = load_network(d.network_path if discovery == "dht" else d.static_network_path)
    result: dict[str, Any] = {"discovery": discovery, "files": files, "k": k, "n": n, "nodes": nodes_count(d), "inflight": inflight,
                              "ceilings": {"rtt_p50_ms": rtt, "fsyncs_per_s": fsyncs}, "phases": {},
                              "targets": TARGETS}
    work = Workload(net, k, n)
    try:
        for size in sizes:
            for conc in (1, inflight):
                label = f"{size // KiB}KiB/{conc}"
                first = len(work.stored)
                put = _run_phase(work.put_jobs(files, size), conc)
                mine = work.stored[first:]
                get = _run_phase(work.get_jobs(mine), conc)
                result["phases"][label] = {
                    "size": size, "inflight": conc,
                    "put": put.to_json() | {"ratios": ratios(put, rtt, fsyncs)},
                    "get": get.to_json() | {"ratios": ratios(get, rtt, fsyncs)},
                }
                echo(f"{label:>10}: put {put.files_per_s:7.1f} files/s p50 {put.p50_ms:6.1f} ms p99 {put.p99_ms:6.1f} ms"
                     f" | get {get.files_per_s:7.1f} files/s p50 {get.p50_ms:6.1f} ms p99 {get.p99_ms:6.1f} ms")
        extra = max(0, idle_files - len(work.stored))
        if extra:
            echo(f"topping the devnet up to {idle_files} files ({extra} more of {sizes[-1] // KiB} KiB, {inflight} in flight) ...")
            top = _run_phase(work.put_jobs(extra, sizes[-1]), inflight)
            result["top_up"] = top.to_json()
    finally:
        net.close()
    result["idle_files"] = len(work.stored)
    pids = {s.name: pid for s in d.specs() if (pid := d.pid_of(s)) is not None}
    roles = {s.name: s.roles for s in d.specs()}
    result["settle_seconds"] = settle_seconds
    if settle_seconds > 0:  # what the nodes still do right after the upload (announcing what they store ...)
        echo(f"letting the devnet settle for {settle_seconds:g} s (its CPU is sampled too) ...")
        settle = idle_cpu(pids, settle_seconds)
        result["settle_cpu_percent"] = {name: {"cpu": v, "roles": roles[name]} for name, v in settle.items()}
    echo(f"sampling the idle devnet's CPU for {idle_seconds:g} s, holding {len(work.stored)} files ...")
    cpu = idle_cpu(pids, idle_seconds)
    result["idle_seconds"] = idle_seconds
    result["idle_cpu_percent"] = {name: {"cpu": v, "roles": roles[name]} for name, v in cpu.items()}
    return result


def nodes_count(d: Devnet) -> int:
    return sum(1 for s in d.specs() if "storage" in s.roles)


def report(r: dict[str, Any]) -> None:
    c = r["ceilings"]
    click.echo(f"veil bench small: {r['files']} files per phase, {r['k']}-of-{r['n']}, {r['nodes']} storage nodes on 127.0.0.1, "
               f"discovery {r['discovery']}")
    click.echo(f"ceilings of this machine (same run): empty round trip p50 {c['rtt_p50_ms']:.2f} ms, "
               f"{c['fsyncs_per_s']:.0f} fsyncs/s on the nodes' disk")
    click.echo(f"{'phase':>10}  {'op':<3} {'files/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50/rtt':>8} {'p50/fsync':>9} {'rate/fsyncs':>11}")
    for label, ph in r["phases"].items():
        for op in ("put", "get"):
            s, q = ph[op], ph[op]["ratios"]
            click.echo(f"{label:>10}  {op:<3} {s['files_per_s']:8.1f} {s['p50_ms']:8.1f} {s['p99_ms']:8.1f} "
                       f"{q['p50_in_round_trips']:8.1f} {q['p50_in_fsyncs']:9.2f} {q['files_per_s_over_fsyncs_per_s']:11.3f}")
    t = r["targets"]
    click.echo(f"targets: one at a time p50 put <= {t['put_p50_ms']:g} ms, get <= {t['get_p50_ms']:g} ms; "
               f"16 in flight (64 KiB) >= {t['put_files_per_s_16']:g} files/s put, >= {t['get_files_per_s_16']:g} get")
    if "top_up" in r:
        click.echo(f"top-up to {r['idle_files']} files: {r['top_up']['files_per_s']:.1f} files/s")
    settle = r.get("settle_cpu_percent", {})
    click.echo(f"idle CPU over {r['idle_seconds']:g} s holding {r['idle_files']} files (% of one core; target < {t['idle_cpu_percent']:g})"
               + (f", after {r['settle_seconds']:g} s to settle (CPU then in brackets):" if settle else ":"))
    for name, v in r["idle_cpu_percent"].items():
        during = f"  ({settle[name]['cpu']:.2f}%)" if name in settle else ""
        click.echo(f"  {name:<12} {v['cpu']:6.2f}%{during}   {','.join(v['roles'])}")


@click.command("small")
@click.option("--files", default=2000, show_default=True, help="Files per phase (each size, one at a time and in flight).")
@click.option("--sizes", default="64,4", show_default=True, help="File sizes in KiB, comma separated.")
@click.option("--inflight", default=16, show_default=True, help="Files in flight in the concurrent phases.")
@click.option("--idle-files", default=10_000, show_default=True, help="Files the devnet holds while its idle CPU is sampled (topped up with the last size).")
@click.option("--idle-seconds", default=60.0, show_default=True, help="How long to sample the idle CPU.")
@click.option("--settle-seconds", default=120.0, show_default=True,
              help="Wait this long after the upload before sampling the idle CPU (the nodes still announce what "
                   "they stored); the CPU of this window is reported too.")
@click.option("-k", "k", default=3, show_default=True)
@click.option("-n", "n", default=10, show_default=True)
@click.option("--nodes", default=10, show_default=True)
@click.option("--node-arg", "node_args", multiple=True, help="Extra `veil node run` argument for every storage node (repeatable).")
@click.option("--discovery", type=click.Choice(["dht", "static"]), default="dht", show_default=True,
              help="How the client finds storage nodes: through the DHT (the devnet's network.json, what `veil put` "
                   "uses) or from the static list of every node (nodes.json).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def small_cmd(files: int, sizes: str, inflight: int, idle_files: int, idle_seconds: float, settle_seconds: float,
              k: int, n: int, nodes: int,
              node_args: tuple[str, ...], discovery: str, as_json: bool) -> None:
    """Store and fetch many small files through a fresh devnet; print files/s, p50/p99, ceilings, ratios and idle CPU."""
    check_options(files, inflight, idle_files, idle_seconds, k, n, nodes)
    if settle_seconds < 0:
        raise UsageError("--settle-seconds must be >= 0")

    def echo(line: str) -> None:  # progress goes to stderr, so --json output stays clean
        click.echo(line, err=True)

    r = run(files, parse_sizes(sizes), nodes, k, n, inflight, idle_files, idle_seconds, list(node_args), echo, discovery,
            settle_seconds)
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        report(r)


def check_options(files: int, inflight: int, idle_files: int, idle_seconds: float, k: int, n: int, nodes: int) -> None:
    if files < 1:
        raise UsageError("--files must be at least 1")
    if not 1 <= inflight <= 256:
        raise UsageError("--inflight must be 1..256")
    if idle_files < 0 or idle_seconds <= 0:
        raise UsageError("--idle-files must be >= 0 and --idle-seconds > 0")
    if not 1 <= k <= n <= 255 or nodes < 1:
        raise UsageError("need 1 <= k <= n <= 255 and at least one node")
