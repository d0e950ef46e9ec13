"""One measured transfer through a running devnet: `veil put` a random file, then `veil get` it,
as child processes whose time and peak RSS (from wait4) are returned. Used by
`veil bench datapath` (bench/datapath.py) and its `--paid` run (bench/paid.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

MB = 1_000_000
MiB = 1 << 20


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, int, bytes]:
    """Run a child; return (seconds, its peak RSS in bytes, its stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            raise click.ClickException(f"{' '.join(cmd[3:5])} failed: {err.read().decode(errors='replace').strip()}")
        return dt, usage.ru_maxrss * 1024, out.read()


def transfer(size: int, root: Path, env: dict[str, str], downloads: int = 1) -> dict[str, Any]:
    """`veil put` a random file of ``size`` bytes, then `veil get` it ``downloads`` times, checking each."""
    src = root / f"file-{size}"
    with open(src, "wb") as f:
        left = size
        chunk = os.urandom(16 * MiB)
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
    veil = [sys.executable, "-m", "veil.cli.main"]
    up_s, up_rss, out = _run([*veil, "put", "-q", str(src)], env)
    cap = out.decode().strip()
    dst = root / f"out-{size}"
    times, rss = [], []
    try:
        for _ in range(downloads):
            dst.unlink(missing_ok=True)
            dt, r, _ = _run([*veil, "get", "-q", cap, "-o", str(dst)], env)
            if not _same(src, dst):
                raise click.ClickException("downloaded file differs from the upload")
            times.append(dt)
            rss.append(r)
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)
    return {"size": size, "upload_s": up_s, "download_s": times[-1], "download_times": times,
            "upload_rss": up_rss, "download_rss": max(rss)}


def _same(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 * MiB), fb.read(8 * MiB)
            if x != y:
                return False
            if not x:
                return True
