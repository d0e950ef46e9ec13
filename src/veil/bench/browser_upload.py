"""`veil bench browser-upload`: a large file (2 GB by default) uploaded from headless chromium
through the gateway, in one run on a fresh devnet, with the browser's memory watched throughout.

The file is written to disk and handed to the page's file input by path (Playwright
``set_input_files``), so neither this process nor the page ever holds it. Printed: the upload's
MB/s, the peak resident memory of all chromium processes above their level before the upload,
and that peak as a fraction of the file size (the ratio: bounded memory means it falls as the
file grows), the JS heap's peak (CDP ``Performance.getMetrics``), and whether `veil get` of the
link gives the same bytes. Needs chromium and the ``playwright`` package (test extras).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from veil.bench.gateway import ARGS
from veil.bench.testfile import write_test_file
from veil.devnet.manager import Devnet
from veil.errors import UsageError

MiB = 1 << 20


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def chromium_rss(root_pid: int) -> int:
    """Resident bytes of every chromium process descended from ``root_pid``."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        parents[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if m and "chrom" in stat.split(")")[0]:
            rss[int(d)] = int(m.group(1)) * 1024

    def under(pid: int) -> bool:
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == root_pid:
                return True
            if pid <= 1:
                return False
        return False

    return sum(v for pid, v in rss.items() if under(pid))


@click.command("browser-upload")
@click.option("--size", "size_mb", default=2000, show_default=True, help="File size in MB.")
@click.option("--nodes", default=10, show_default=True, help="Storage nodes in the bench devnet.")
@click.option("--chromium", default="/usr/bin/chromium", show_default=True, help="Chromium executable.")
def browser_upload_cmd(size_mb: int, nodes: int, chromium: str) -> None:
    """A large browser upload in bounded memory: peak chromium memory as a fraction of the file."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise UsageError("veil bench browser-upload needs playwright: pip install -e '.[test]'") from e
    if not Path(chromium).exists():
        raise UsageError(f"no chromium at {chromium}: apt-get install chromium")
    if size_mb < 1:
        raise UsageError("--size must be at least 1 MB")
    size = size_mb * 10**6
    with tempfile.TemporaryDirectory(prefix="veil-bench-bu-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "VEIL_HOME": str(root), "VEIL_DEVNET": str(root / "devnet")}
        devnet = Devnet(root / "devnet")
        net, _ = devnet.up(nodes, ["storage"], [])
        try:
            src = write_test_file(root / "big.bin", size)
            want = _digest(src)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=ARGS)
                page = browser.new_context().new_page()
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(net.gateway + "/")
                page.wait_for_selector("body[data-loaded='1']")
                base = chromium_rss(os.getpid())
                peak, heap = [base], [0]
                stop = threading.Event()

                def sample() -> None:
                    while not stop.wait(0.5):
                        peak[0] = max(peak[0], chromium_rss(os.getpid()))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                t = time.perf_counter()
                page.set_input_files("#file-input", str(src))
                while True:  # the JS heap through CDP, on this thread (Playwright's objects are not thread-safe)
                    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                    heap[0] = max(heap[0], int(metrics.get("JSHeapUsedSize", 0)))
                    if page.locator("li.upload[data-state]").count():
                        break
                    page.wait_for_timeout(1000)
                elapsed = time.perf_counter() - t
                stop.set()
                sampler.join()
                li = page.locator("li.upload").first
                link = li.get_attribute("data-link")
                if li.get_attribute("data-state") != "done" or not link:
                    raise UsageError(f"bench: the browser upload failed: {li.inner_text()}")
                browser.close()
            growth = peak[0] - base
            click.echo(f"browser-upload bench: {size_mb} MB file from chromium, {nodes} storage nodes, 3-of-10")
            click.echo(f"upload     {size / 1e6 / elapsed:7.1f} MB/s ({elapsed:6.1f} s)")
            click.echo(f"memory     chromium peak +{growth / MiB:6.0f} MiB over its idle level ({base / MiB:.0f} MiB); "
                       f"JS heap peak {heap[0] / MiB:.0f} MiB")
            click.echo(f"ratio      peak growth / file size = {growth / size:.3f}  (bounded: stays well below 1 as "
                       "files grow)")
            out = root / "back.bin"
            got = subprocess.run([sys.executable, "-m", "veil.cli.main", "get", "-q", link, "-o", str(out)], env=env,
                                 timeout=3600, capture_output=True)  # fmt: skip
            if got.returncode != 0:
                raise UsageError(f"bench: veil get of the link failed: {got.stderr.decode().strip()[-300:]}")
            same = _digest(out) == want
        finally:
            devnet.down()
    click.echo(f"read back  veil get of the link: {'same bytes' if same else 'DIFFERENT BYTES'}")
    if not same:
        raise UsageError("bench: the uploaded file reads back different")
