"""`veil bench datapath`: upload and download through a real 10-node devnet, beside this
machine's ceilings measured in the same run.

Ceilings: AES-256-GCM seal rate (reused buffers), SHA-256 rate, erasure-encode rate at the
chosen k-of-n, and loopback TLS throughput of Veil's own transport (one connection, PUT and
GET, to a separate process). The upload and download run the real `veil put` / `veil get`
commands as child processes, whose peak RSS is read from the kernel (wait4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from veil.crypto.aead import Aead
from veil.crypto.hashes import sha256
from veil.devnet.manager import Devnet
from veil.erasure import Codec
from veil.net.client import PeerClient

from .paid import paid_report, paid_run
from .transfer import MB, MiB, transfer


def _rate(fn: Any, nbytes: int, min_time: float = 0.5) -> float:
    """Bytes per second of ``fn`` (which processes ``nbytes`` per call), best of repeated runs."""
    fn()
    best = 0.0
    t_end = time.perf_counter() + min_time
    while True:
        t0 = time.perf_counter()
        reps = 0
        while time.perf_counter() - t0 < 0.1:
            fn()
            reps += 1
        best = max(best, reps * nbytes / (time.perf_counter() - t0))
        if time.perf_counter() > t_end:
            return best


def ceilings(k: int, n: int, tmp: Path) -> dict[str, float]:
    seg = os.urandom(MiB)
    out = bytearray(MiB + 16)
    aead = Aead(os.urandom(32))
    nonce = bytes(12)
    codec = Codec(k, n)
    ct = seg + bytes(16)
    res = {
        "aes_gcm_seal": _rate(lambda: aead.seal_into(nonce, seg, b"", out), MiB),
        "sha256": _rate(lambda: sha256(seg), MiB),
        "erasure_encode": _rate(lambda: codec.encode(ct), len(ct)),
    }
    res.update(tls_ceiling(tmp))
    return res


def tls_ceiling(tmp: Path, body: int = 8 * MiB, total: int = 512 * MiB) -> dict[str, float]:
    d = tmp / "echo"
    d.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "veil.bench.tlsecho", str(d)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (d / "echo.json").exists():
            if time.monotonic() > deadline:
                raise click.ClickException("transport echo server did not start")
            time.sleep(0.05)
        info = json.loads((d / "echo.json").read_text())
        c = PeerClient("127.0.0.1", info["port"], bytes.fromhex(info["node_id"]))
        payload = os.urandom(body)
        c.request("PUT", "/sink", payload)
        t0 = time.perf_counter()
        for _ in range(total // body):
            c.request("PUT", "/sink", payload)
        put_rate = total / (time.perf_counter() - t0)
        buf = memoryview(bytearray(body))
        c.request("GET", f"/source?size={body}", into=buf)
        t0 = time.perf_counter()
        for _ in range(total // body):
            c.request("GET", f"/source?size={body}", into=buf)
        get_rate = total / (time.perf_counter() - t0)
        c.close()
        return {"tls_send": put_rate, "tls_receive": get_rate}
    finally:
        proc.kill()
        proc.wait()


def run(size: int, big: int | None, k: int, n: int, nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as t:
        tmp = Path(t)
        ceil = ceilings(k, n, tmp)
        home = tmp / "home"
        env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet")}
        d = Devnet(home / "devnet")
        d.up(nodes, ["storage"], [])
        try:
            main = transfer(size, tmp, env)
            large = transfer(big, tmp, env) if big else None
        finally:
            d.down()
    up = main["size"] / main["upload_s"]
    down = main["size"] / main["download_s"]
    result: dict[str, Any] = {
        "file_bytes": size, "k": k, "n": n, "nodes": nodes,
        "upload_MBps": up / MB, "download_MBps": down / MB,
        "ceilings_MBps": {name: v / MB for name, v in ceil.items()},
        "upload_ratio": {name: up / v for name, v in ceil.items()},
        "download_ratio": {name: down / v for name, v in ceil.items()},
        "client_peak_rss_MB": {str(size): max(main["upload_rss"], main["download_rss"]) / MB},
        "targets": {"upload_MBps": 60, "download_MBps": 120, "client_peak_rss_MB": 200},
    }
    if large:
        result["client_peak_rss_MB"][str(big)] = max(large["upload_rss"], large["download_rss"]) / MB
        result["large_upload_MBps"] = large["size"] / large["upload_s"] / MB
        result["large_download_MBps"] = large["size"] / large["download_s"] / MB
    return result


def report(r: dict[str, Any]) -> None:
    click.echo(f"veil bench datapath: {r['file_bytes'] / MiB:.0f} MiB file, {r['k']}-of-{r['n']}, {r['nodes']} nodes on 127.0.0.1")
    click.echo("ceilings of this machine (same run):")
    for name, v in r["ceilings_MBps"].items():
        click.echo(f"  {name:<16} {v:9.0f} MB/s")
    click.echo(f"upload   {r['upload_MBps']:7.1f} MB/s of plaintext   (target >= 60)")
    click.echo(f"download {r['download_MBps']:7.1f} MB/s of plaintext   (target >= 120)")
    click.echo("ratios to the ceilings (upload / download):")
    for name in r["ceilings_MBps"]:
        click.echo(f"  {name:<16} {r['upload_ratio'][name]:6.3f} / {r['download_ratio'][name]:6.3f}")
    for size, rss in r["client_peak_rss_MB"].items():
        click.echo(f"client peak RSS, {int(size) / MiB:.0f} MiB file: {rss:.0f} MB   (target <= 200)")
    if "large_upload_MBps" in r:
        click.echo(f"large file: upload {r['large_upload_MBps']:.1f} MB/s, download {r['large_download_MBps']:.1f} MB/s")
    if "paid" in r:
        p = r["paid"]
        click.echo(f"paid download {p['paid_download_MBps']:7.1f} MB/s vs free {p['free_download_MBps']:.1f} MB/s: "
                   f"{p['paid_to_free']:.1%} (target >= 90%), channels already open")
        click.echo(f"  cold (allowance spent, channels opened during the download): {p['paid_cold_download_MBps']:.1f} MB/s; "
                   f"{p['paid_cheques']} cheques, {p['paid_spent_units'] / 1e9:.6f} VEIL over both")  # fmt: skip


@click.command("datapath")
@click.option("--size", default=256, show_default=True, help="File size in MiB.")
@click.option("--large", default=1024, show_default=True, help="Second file (MiB) for the RSS check; 0 to skip.")
@click.option("-k", "k", default=3, show_default=True)
@click.option("-n", "n", default=10, show_default=True)
@click.option("--nodes", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--paid", is_flag=True, help="Also download with payments on (allowance spent first) and print the slowdown.")
def datapath_cmd(size: int, large: int, k: int, n: int, nodes: int, as_json: bool, paid: bool) -> None:
    """Upload and download through a local devnet; print MB/s, ceilings, ratios and peak RSS."""
    r = run(size * MiB, large * MiB if large else None, k, n, nodes)
    if paid:  # bench/paid.py: a charging devnet, the same file size, in this invocation
        with tempfile.TemporaryDirectory(prefix="veil-bench-paid-") as t:
            r["paid"] = paid_report(r, paid_run(size * MiB, nodes, Path(t)))
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        report(r)
