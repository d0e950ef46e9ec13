"""Browser tests: Debian's chromium driven by Playwright against a real devnet and real
`veil gateway` processes on 127.0.0.1.

One devnet (with its gateway node) for the whole session; a second gateway, with a tenants
file and its log captured, for the white-label, embed and no-key tests. Hosts ``*.localhost``
resolve to 127.0.0.1 in chromium and count as secure origins, so WebCrypto and service
workers work on them without TLS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_browser import ARGS, CHROMIUM, Env, wait_http
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from veil.devnet.manager import Devnet
from veil.devnet.specs import free_port

LOGO_ALPHA = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" '
              b'fill="#d0442c"/></svg>')
LOGO_BETA = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
             b'fill="#1e7d4f"/></svg>')


def _tenants(dir: Path, embed_origin: str) -> Path:
    (dir / "alpha.svg").write_bytes(LOGO_ALPHA)
    (dir / "beta.svg").write_bytes(LOGO_BETA)
    path = dir / "tenants.toml"
    path.write_text(f"""
unknown_host = "404"
default = "alpha"

[tenant.alpha]
hosts = ["alpha.localhost", "127.0.0.1"]
name = "Alpha Files"
logo = "alpha.svg"
colors = {{ accent = "#d0442c", background = "#fff4ef" }}
footer = [{{ label = "Alpha terms", url = "https://alpha.example/terms" }}]
max_file_size = "300MB"
embed_origins = ["{embed_origin}"]
show_embed = true

[tenant.beta]
hosts = ["beta.localhost"]
name = "Beta Vault"
logo = "beta.svg"
colors = {{ accent = "#1e7d4f", background = "#effaf3" }}
footer = [{{ label = "Beta privacy", url = "https://beta.example/privacy" }}]
max_file_size = "1MB"
allowed_types = ["image/*", "text/plain"]
""")
    return path


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("veil-browser")
    devnet = Devnet(home / "devnet")
    net, _ = devnet.up(10, ["storage"], [])
    proc_env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet")}
    port = free_port()
    embed_port = free_port()
    embed_origin = f"http://127.0.0.1:{embed_port}"
    log_path = home / "branded-gateway.log"
    log = open(log_path, "wb")
    gw = subprocess.Popen(
        [sys.executable, "-m", "veil.cli.main", "gateway", "-v", "--listen", f"127.0.0.1:{port}",
         "--tenants", str(_tenants(home, embed_origin)), "--network", str(devnet.static_network_path)],
        env=proc_env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/openapi.json")
        wait_http(net.gateway + "/api/openapi.json")
        yield Env(home, devnet, net, proc_env, net.gateway, f"http://127.0.0.1:{port}", port, log_path, embed_origin)
    finally:
        gw.terminate()
        gw.wait(10)
        log.close()
        devnet.down()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """One Playwright for the session: the sync API allows only one at a time, so a module that
    needs a chromium of its own (other flags) launches it from this one."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(accept_downloads=True)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.errors = errors  # type: ignore[attr-defined]
    return p


