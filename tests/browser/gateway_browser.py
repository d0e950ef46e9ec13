"""Helpers for the gateway's browser tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from veil.bench.testfile import write_test_file
from veil.client.network import Network
from veil.devnet.manager import Devnet

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[2] / "artifacts"


@dataclass
class Env:
    home: Path
    devnet: Devnet
    net: Network
    env: dict[str, str]
    gateway: str  # the devnet's gateway node
    branded: str  # the tenants gateway, as http://127.0.0.1:PORT
    branded_port: int
    branded_log: Path
    embed_origin: str

    def veil(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=self.env, capture_output=True,
                           timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def put(self, path: Path) -> str:
        """`veil put` a file; returns its share link."""
        link = json.loads(self.veil("put", "--json", str(path)).stdout.decode())["link"]
        assert isinstance(link, str)
        return link

    def host_url(self, host: str) -> str:
        return f"http://{host}:{self.branded_port}"


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def upload_in_page(page: Page, files: list[Path], timeout: float = 300_000) -> list[str]:
    """Choose ``files`` in the page's file input; wait until each upload ends; return their links."""
    page.wait_for_selector("body[data-loaded='1']")
    before = page.locator("li.upload").count()
    page.set_input_files("#file-input", [str(f) for f in files])
    for i in range(before, before + len(files)):
        page.wait_for_selector(f"li.upload:nth-child({i + 1})[data-state]", timeout=timeout)
    items = page.locator("li.upload")
    links = []
    for i in range(before, before + len(files)):
        li = items.nth(i)
        assert li.get_attribute("data-state") == "done", li.inner_text()
        links.append(li.get_attribute("data-link") or "")
    return links


def download_in_page(page: Page, link: str, dest: Path, timeout: float = 300_000) -> Path:
    """Open ``link`` and save what the Download button streams to ``dest``."""
    page.goto(link)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    with page.expect_download(timeout=timeout) as dl:
        page.click("#download")
    dl.value.save_as(dest)
    page.wait_for_selector("body[data-downloaded='1']", timeout=timeout)
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    """A file of ``size`` pseudo-random bytes (fast: one random MiB repeated with a counter)."""
    return write_test_file(path, size, seed)


class RecordingProxy:
    """A TCP relay in front of the gateway that keeps every byte the gateway is sent."""

    def __init__(self, target_port: int) -> None:
        self.received = bytearray()
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if record:
                    with self.lock:
                        self.received += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


class CuttingProxy:
    """A TCP relay in front of the gateway that, once ``cut_after`` bytes have gone up, resets every
    connection it carries at that moment (RST, as a dropped network does) and every new one for
    ``down_for`` seconds (the outage: a browser's own silent retry of the request fails too) —
    once; then connections pass as before."""

    def __init__(self, target_port: int, cut_after: int, down_for: float = 3.0) -> None:
        self.cut_after = cut_after
        self.down_for = down_for
        self.down_until = 0.0
        self.refused = 0
        self.sent = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.live: set[socket.socket] = set()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.live |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _cut(self) -> None:
        with self.lock:
            victims, self.live = self.live, set()
            self.cuts += 1
            self.down_until = time.monotonic() + self.down_for
        for s in victims:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                if up:
                    with self.lock:
                        self.sent += len(data)
                        due = self.cuts == 0 and self.sent >= self.cut_after
                    if due:
                        self._cut()
                        return
        except OSError:
            pass
        finally:
            with self.lock:
                self.live -= {src, dst}
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
