"""`veil bench gateway`: the browser path against the CLI, on one fresh devnet, in one run.

Times a file (100 MB by default) through ``veil put`` / ``veil get`` (real CLI processes) and
through the web app in headless chromium (in-page WebCrypto encryption and upload; download
streamed and decrypted by the service worker to disk), then prints MB/s and the ratio of
browser to CLI. Needs chromium (`/usr/bin/chromium`) and the ``playwright`` package (test extras).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from veil.bench.testfile import write_test_file
from veil.devnet.manager import Devnet
from veil.errors import UsageError

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@click.command("gateway")
@click.option("--size", "size_mb", default=100, show_default=True, help="File size in MB.")
@click.option("--nodes", default=10, show_default=True, help="Storage nodes in the bench devnet.")
@click.option("--chromium", default="/usr/bin/chromium", show_default=True, help="Chromium executable.")
def gateway_cmd(size_mb: int, nodes: int, chromium: str) -> None:
    """Browser upload/download through the gateway vs `veil put`/`veil get` (target: browser >= 50%)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise UsageError("veil bench gateway needs playwright: pip install -e '.[test]'") from e
    if not Path(chromium).exists():
        raise UsageError(f"no chromium at {chromium}: apt-get install chromium")
    size = size_mb * 10**6
    with tempfile.TemporaryDirectory(prefix="veil-bench-gw-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "VEIL_HOME": str(root), "VEIL_DEVNET": str(root / "devnet")}
        devnet = Devnet(root / "devnet")
        net, _ = devnet.up(nodes, ["storage"], [])
        try:
            src = root / "bench.bin"
            write_test_file(src, size)
            want = _digest(src)

            def veil(*args: str) -> subprocess.CompletedProcess[bytes]:
                return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True,
                                      check=True, timeout=900)

            t = time.perf_counter()
            cap = veil("put", "-q", str(src)).stdout.decode().strip()
            cli_up = time.perf_counter() - t
            t = time.perf_counter()
            veil("get", "-q", cap, "-o", str(root / "cli.out"))
            cli_down = time.perf_counter() - t
            if _digest(root / "cli.out") != want:
                raise UsageError("bench: veil get returned different bytes")
            (root / "cli.out").unlink()

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=ARGS)
                ctx = browser.new_context(accept_downloads=True)
                page = ctx.new_page()
                page.goto(net.gateway + "/")
                page.wait_for_selector("body[data-loaded='1']")
                t = time.perf_counter()
                page.set_input_files("#file-input", str(src))
                page.wait_for_selector("li.upload[data-state]", timeout=900_000)
                br_up = time.perf_counter() - t
                li = page.locator("li.upload").first
                link = li.get_attribute("data-link")
                if li.get_attribute("data-state") != "done" or not link:
                    raise UsageError(f"bench: browser upload failed: {li.inner_text()}")
                page.goto(link)
                page.wait_for_selector("body[data-ready='1']")
                t = time.perf_counter()
                with page.expect_download(timeout=900_000) as dl:
                    page.click("#download")
                out = dl.value.path()
                br_down = time.perf_counter() - t
                if _digest(out) != want:
                    raise UsageError("bench: the browser download returned different bytes")
                browser.close()
        finally:
            devnet.down()

    mb = size / 1e6

    def row(what: str, cli: float, br: float) -> None:
        click.echo(f"{what:<9} CLI {mb / cli:7.1f} MB/s ({cli:5.2f} s)   browser {mb / br:7.1f} MB/s ({br:5.2f} s)"
                   f"   browser/CLI {cli / br:5.0%}")

    click.echo(f"gateway bench: {size_mb} MB file, {nodes} storage nodes, 3-of-10, on one fresh devnet")
    row("upload", cli_up, br_up)
    row("download", cli_down, br_down)
    click.echo("CLI times are whole `veil put`/`veil get` processes; browser times run from choosing the file "
               "(or pressing Download) to the share link (or the file saved on disk).")
