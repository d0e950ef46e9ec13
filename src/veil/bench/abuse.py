"""`veil bench abuse`: a normal client's downloads from one node, idle and under a mixed hostile load.

One real `veil node run --role storage` process on 127.0.0.1 gets two made-up files through
raw storage-v2 requests (a 32 MiB share of 1 MiB blocks, a 1 MiB share of 4 KiB blocks). The
normal client (127.0.0.1, a pinned PeerClient) then reads verified 4 MiB block ranges of the
first back to back (throughput) while a second thread reads single 4 KiB blocks of the other
every 20 ms (latency): for N/2 seconds with nothing else going on, for N seconds while the
hostile load of ``veil.bench.hostile`` runs in its own process, and for N/2 seconds idle again
("after"; the idle figures are both halves together). The node's RSS, open files and threads
are sampled from /proc every 0.5 s. The ratio attack/idle is the number to watch; the idle
run is this machine's own ceiling, measured in the same invocation.
"""

from __future__ import annotations

import json
import os
import random
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.errors import VeilError
from veil.format.merkle import verify_range
from veil.format.share import BLOCK_TREE
from veil.net.client import PeerClient
from veil.protocol.storage import (
    commit_path,
    encode_commit,
    parse_range_head,
    range_path,
    range_reply_max,
    upload_path,
    uploads_path,
)
from veil.testing.shares import FakeShare, fake_file

MiB = 1 << 20
SAMPLE_EVERY = 0.5
RANGE_BLOCKS = 4
PROBE_EVERY = 0.02
NODE_NOFILE = 1024  # the usual default soft limit, so runs compare across machines


# -- the node ------------------------------------------------------------------------------
@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    port: int
    node_id: bytes

    def client(self, timeout: float = 30.0) -> PeerClient:
        return PeerClient("127.0.0.1", self.port, self.node_id, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_node(data: Path, nofile: int = NODE_NOFILE) -> Node:
    """A storage node on 127.0.0.1 whose open-files limit is ``nofile`` (at most the hard limit)."""
    data.mkdir(parents=True)

    def limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        cap = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (cap, hard))

    log = open(data.parent / "node.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(data),
         "--listen", "127.0.0.1:0", "--role", "storage", "--id-bits", str(DEVNET_ID_BITS),
         "--storage-admission", "open"],  # a throwaway node: the transport under load, not admission
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=limit)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = data / "node.json"
        if f.exists():
            v = json.loads(f.read_text())
            if v.get("pid") == proc.pid:
                return Node(proc, int(v["port"]), bytes.fromhex(v["node_id"]))
        if proc.poll() is not None:
            raise click.ClickException(f"the node exited with {proc.returncode} (log: {data.parent / 'node.log'})")
        time.sleep(0.05)
    proc.kill()
    raise click.ClickException("the node did not start within 60 s")


def nofile_limit(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return int(soft) if soft.isdigit() else None
    return None


class Sampler(threading.Thread):
    """Every 0.5 s: the node's VmRSS, VmHWM, threads and open files, with peaks per phase."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="sampler", daemon=True)
        self.pid = pid
        self.phase = "idle"
        self.peaks: dict[str, dict[str, int]] = {}
        self.last: dict[str, int] = {}
        self.hwm_kib = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return  # the node is gone; the report says so
        v = {k: int(line.split()[1]) for line in status.splitlines()
             for k in ("VmRSS", "VmHWM", "Threads") if line.startswith(k + ":")}
        self.hwm_kib = max(self.hwm_kib, v.get("VmHWM", 0))
        self.last = {"rss_kib": v.get("VmRSS", 0), "open_files": fds, "threads": v.get("Threads", 0)}
        peak = self.peaks.setdefault(self.phase, {})
        for k, x in self.last.items():
            peak[k] = max(peak.get(k, 0), x)

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_EVERY):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


# -- the normal client ---------------------------------------------------------------------
def store(c: PeerClient, sh: FakeShare, per_put: int) -> None:
    """Store ``sh`` through an upload session (POST, PUTs, commit with the manifest)."""
    uid = c.call("POST", uploads_path(), sh.request.to_value())["id"]
    for s in range(0, len(sh.blocks), per_put):
        c.request("PUT", upload_path(uid, s), sh.body(s, s + per_put))
    c.request("POST", commit_path(uid), encode_commit(sh.commit), {"Content-Type": "application/cbor"})


def read_verified(c: PeerClient, sh: FakeShare, start: int, count: int, buf: memoryview) -> int:
    """Read blocks [start, start+count) of ``sh`` and check them against its root; their bytes."""
    c.request("GET", range_path(sh.si, sh.mhash, sh.shnum, start, count), into=buf)
    head = parse_range_head(buf)
    if (head.start, head.count) != (start, count):
        raise VeilError("the node answered a different range")
    off, leaves = head.size, []
    for i in range(start, start + count):
        n = len(sh.blocks[i])
        leaves.append(BLOCK_TREE.leaf(buf[off : off + n]))
        off += n
    verify_range(BLOCK_TREE, sh.root, len(sh.blocks), start, leaves, head.bproof)
    return off - head.size


@dataclass
class ClientRun:
    bytes: int = 0
    reads: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    longest_range: float = 0.0  # the longest wait for one 4 MiB read: how long the client stalled

    def __add__(self, other: ClientRun) -> ClientRun:
        return ClientRun(self.bytes + other.bytes, self.reads + other.reads, self.seconds + other.seconds,
                         self.latencies + other.latencies, self.errors + other.errors,
                         max(self.longest_range, other.longest_range))

    @property
    def mb_s(self) -> float:
        return round(self.bytes / 1e6 / self.seconds, 1) if self.seconds else 0.0

    def report(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def q(p: float) -> float | None:
            return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {"mb_s": self.mb_s, "seconds": round(self.seconds, 2), "bytes": self.bytes, "range_reads": self.reads, "small_reads": len(lat),
                "small_p50_ms": q(0.50), "small_p99_ms": q(0.99),
                "small_mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else None,
                "small_max_ms": round(1000 * lat[-1], 2) if lat else None,
                "range_max_ms": round(1000 * self.longest_range, 2),
                "errors": dict(sorted(self.errors.items()))}


def run_client(node: Node, big: FakeShare, small: FakeShare, seconds: float) -> ClientRun:
    """The normal client for ``seconds``: back-to-back verified range reads, and small-read probes."""
    out = ClientRun()
    stop = threading.Event()
    lock = threading.Lock()

    def fail(e: Exception) -> None:
        with lock:
            out.errors[e.__class__.__name__] += 1
        stop.wait(0.2)

    def download() -> None:
        c = node.client()
        buf = memoryview(bytearray(range_reply_max(RANGE_BLOCKS, len(big.blocks[0]))))
        start = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                n = read_verified(c, big, start, RANGE_BLOCKS, buf)
                with lock:
                    out.bytes += n
                    out.reads += 1
                    out.longest_range = max(out.longest_range, time.perf_counter() - t0)
                start = (start + RANGE_BLOCKS) % (len(big.blocks) - RANGE_BLOCKS + 1)
            except VeilError as e:
                fail(e)
        c.close()

    def probe() -> None:
        c = node.client()
        buf = memoryview(bytearray(range_reply_max(1, len(small.blocks[0]))))
        rng = random.Random(7)
        while not stop.wait(PROBE_EVERY):
            t0 = time.perf_counter()
            try:
                read_verified(c, small, rng.randrange(len(small.blocks)), 1, buf)
                out.latencies.append(time.perf_counter() - t0)
            except VeilError as e:
                fail(e)
        c.close()

    threads = [threading.Thread(target=f, daemon=True) for f in (download, probe)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    out.seconds = time.perf_counter() - t0
    return out


# -- the hostile process -------------------------------------------------------------------
def _readline(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else b""


def under_attack(node: Node, big: FakeShare, small: FakeShare, seconds: float, scale: float,
                 ) -> tuple[ClientRun, dict[str, dict[str, int]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil.bench.hostile", "--port", str(node.port),
         "--seconds", str(seconds + 10), "--scale", str(scale)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    try:
        if _readline(proc, 30).strip() != b"ready":
            raise click.ClickException("the hostile load did not start")
        run = run_client(node, big, small, seconds)
        assert proc.stdin is not None
        proc.stdin.close()  # the load stops now (it would by itself at its deadline)
        line = _readline(proc, 40)
        if not line:
            raise click.ClickException("the hostile load did not report")
        tally: dict[str, dict[str, int]] = json.loads(line)
        proc.wait(10)
        return run, tally
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -- the command ---------------------------------------------------------------------------
def measure(seconds: float, tmp: Path, nofile: int = NODE_NOFILE) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    scale = min(1.0, seconds / 30)
    node = start_node(tmp / "node", nofile)
    sampler = Sampler(node.proc.pid)
    try:
        c = node.client()
        big = fake_file(os.urandom(16), nseg=32, bsize=MiB, n=2, k=1, seed=1)[0]
        small = fake_file(os.urandom(16), nseg=256, bsize=4096, n=2, k=1, seed=2)[0]
        store(c, big, 8)
        store(c, small, 256)
        c.close()
        sampler.start()
        # The idle run is split around the attack, so a change in the machine's other load
        # during the bench moves both sides of the ratio alike.
        before = run_client(node, big, small, seconds / 2)
        sampler.phase = "attack"
        attacked, tally = under_attack(node, big, small, seconds, scale)
        sampler.phase = "after"
        after = run_client(node, big, small, seconds / 2)
        try:
            check = node.client(timeout=10)
            read_verified(check, small, 0, 1, memoryview(bytearray(range_reply_max(1, 4096))))
            check.close()
            answers_after = True
        except VeilError:
            answers_after = False
        sampler.stop()
        pid = node.proc.pid
        node_limit = nofile_limit(pid)
        alive = node.proc.poll() is None
    finally:
        node.stop()
    i, a = (before + after).report(), attacked.report()
    i.update(before_mb_s=before.mb_s, after_mb_s=after.mb_s)
    mib = {ph: {"rss_peak_mib": round(p["rss_kib"] / 1024, 1), "open_files_peak": p["open_files"],
                "threads_peak": p["threads"]} for ph, p in sampler.peaks.items()}
    return {
        "seconds": seconds, "scale": round(scale, 3),
        "client": {"idle": i, "attack": a, "ratio": round(a["mb_s"] / i["mb_s"], 3) if i["mb_s"] else None},
        "node": {**mib, "vm_hwm_mib": round(sampler.hwm_kib / 1024, 1), "pid": pid,
                 "open_files_limit": node_limit, "alive_after": alive, "answers_after": answers_after},
        "hostile": tally,
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_report(r: dict[str, Any]) -> None:
    i, a, n = r["client"]["idle"], r["client"]["attack"], r["node"]
    ratio = r["client"]["ratio"]
    click.echo(f"one storage node (open files limit {n['open_files_limit']}); normal client from 127.0.0.1; "
               f"hostile load from 127.0.0.10+ (scale {r['scale']}); {r['seconds']:g} s under attack, as long idle")
    click.echo(f"{'normal client':24}{'idle':>12}{'under attack':>14}")
    click.echo(f"{'  download MB/s':24}{i['mb_s']:>12.1f}{a['mb_s']:>14.1f}   ratio "
               + ("-" if ratio is None else f"{ratio:.2f}"))
    click.echo(f"{'    (idle before/after)':24}{i['before_mb_s']:>6.1f}/{i['after_mb_s']:<5.1f}")
    click.echo(f"{'  4 KiB read p50 ms':24}{_ms(i['small_p50_ms']):>12}{_ms(a['small_p50_ms']):>14}")
    click.echo(f"{'  4 KiB read p99 ms':24}{_ms(i['small_p99_ms']):>12}{_ms(a['small_p99_ms']):>14}")
    click.echo(f"{'  4 KiB read max ms':24}{_ms(i['small_max_ms']):>12}{_ms(a['small_max_ms']):>14}")
    click.echo(f"{'  4 MiB read max ms':24}{_ms(i['range_max_ms']):>12}{_ms(a['range_max_ms']):>14}")
    click.echo(f"{'  reads (4 MiB / 4 KiB)':24}{i['range_reads']:>6}/{i['small_reads']:<5}"
               f"{a['range_reads']:>8}/{a['small_reads']:<5}")
    for label, run in (("idle", i), ("under attack", a)):
        if run["errors"]:
            click.echo(f"  errors {label}: " + ", ".join(f"{k} x{v}" for k, v in run["errors"].items()))
    click.echo(f"{'node':24}{'idle':>12}{'under attack':>14}{'after':>10}")
    for key, label in (("rss_peak_mib", "  RSS peak MiB"), ("open_files_peak", "  open files peak"),
                       ("threads_peak", "  threads peak")):
        vals = [n.get(ph, {}).get(key, "-") for ph in ("idle", "attack", "after")]
        click.echo(f"{label:24}{vals[0]!s:>12}{vals[1]!s:>14}{vals[2]!s:>10}")
    click.echo(f"  VmHWM (lifetime peak RSS) {n['vm_hwm_mib']} MiB; alive after the load: "
               f"{'yes' if n['alive_after'] else 'NO'}; answers after: {'yes' if n['answers_after'] else 'NO'}")
    click.echo("hostile requests and what the node answered (status, closed, reset, timeout = no answer "
               "within 10 s, open_at_end = still held when the load stopped):")
    for kind, outcomes in r["hostile"].items():
        text = ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items(), key=lambda kv: -kv[1])) or "-"
        click.echo(f"  {kind:26}{text}")


@click.command("abuse")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Length of the run under attack; the idle run is as long, half before and half after.")
@click.option("--node-nofile", default=NODE_NOFILE, show_default=True, type=click.IntRange(64),
              help="The node's open-files limit (ulimit -n).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def abuse_cmd(seconds: float, node_nofile: int, as_json: bool) -> None:
    """A normal client's download throughput and latency from one node, idle and under a mixed hostile
    load (session floods, slow loris, idle keep-alives, oversized bodies, smuggling, tiny blocks,
    garbage handshakes), with the node's peak RSS, open files and threads."""
    if not Path("/proc/self/status").exists():
        raise click.ClickException("veil bench abuse reads the node's resources from /proc (Linux only)")
    with tempfile.TemporaryDirectory(prefix="veil-bench-abuse-") as d:
        r = measure(seconds, Path(d), node_nofile)
    if as_json:
        click.echo(json.dumps(r, indent=2, sort_keys=True))
    else:
        print_report(r)
