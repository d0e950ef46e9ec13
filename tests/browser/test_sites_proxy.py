"""Sites on a real devnet (validators in a Raft cluster, storage nodes over TLS): `veil site
publish` under a registered name, opened by a real chromium through `veil proxy`
(--proxy-server), and the gateway's /n/ route under two tenants.

One devnet (with relays: the proxy fetches over onion circuits), one proxy, one gateway and one
browser for the whole module."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_browser import ARGS, CHROMIUM
from playwright.sync_api import Browser, Playwright

from veil.client.wallet import Wallet, create_wallet
from veil.devnet.ledger import faucet
from veil.devnet.manager import Devnet
from veil.devnet.specs import free_port
from veil.ledger.amount import UNIT

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(900)]

PASS = "correct horse"
PNG = bytes.fromhex(  # a 1x1 red PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0"
    "000003010100c9fe92ef0000000049454e44ae426082")


@dataclass
class Sites:
    home: Path
    devnet: Devnet
    env: dict[str, str]
    alice: Wallet
    proxy: str  # http://127.0.0.1:PORT
    gateway_port: int
    site: Path

    def veil(self, *args: str, check: bool = True, wallet: Wallet | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_WALLET": str((wallet or self.alice).path), "VEIL_PASSPHRASE": PASS}
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p


def _write_site(d: Path, version: str) -> None:
    (d / "media").mkdir(parents=True, exist_ok=True)
    (d / "index.html").write_text(f'<!doctype html><title>Alice</title><h1 id="v">{version}</h1>'
                                  '<img id="dot" src="media/dot.png"><a href="about/">about</a>')
    (d / "about").mkdir(exist_ok=True)
    (d / "about" / "index.html").write_text("<!doctype html><title>About</title><p id='who'>about alice</p>")
    (d / "404.html").write_text("<!doctype html><title>Lost</title><p id='lost'>alice has no such page</p>")
    (d / "media" / "dot.png").write_bytes(PNG)
    (d / "media" / "clip.bin").write_bytes(bytes(range(256)) * 400)


def _spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    f = open(log, "wb")
    return subprocess.Popen([sys.executable, "-m", "veil.cli.main", *args], env=env, stdout=f, stderr=f,
                            stdin=subprocess.DEVNULL)  # fmt: skip


def _wait_listening(port: int, log: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited: {log.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"nothing listening on {port}: {log.read_text()}")


def _tenants(home: Path) -> Path:
    p = home / "tenants.toml"
    p.write_text('unknown_host = "404"\ndefault = "alpha"\n\n[tenant.alpha]\nhosts = ["alpha.localhost"]\n'
                 'name = "Alpha Files"\n\n[tenant.beta]\nhosts = ["beta.localhost"]\nname = "Beta Vault"\n')
    return p


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    home = tmp_path_factory.mktemp("veil-sites")
    env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet")}
    devnet = Devnet(home / "devnet")
    up = subprocess.run([sys.executable, "-m", "veil.cli.main", "devnet", "up", "--nodes", "10", "--validators", "3",
                         "--relays", "3", "--name-commit-wait", "2s"], env=env, capture_output=True, timeout=900)
    assert up.returncode == 0, up.stderr.decode()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        alice = create_wallet(home / "alice.wallet", PASS, m_cost_kib=1024)
        faucet(devnet, alice.address, 100 * UNIT)
        s = Sites(home, devnet, env, alice, "", 0, home / "site")
        s.veil("name", "register", "alice")
        _write_site(s.site, "first")
        s.veil("site", "publish", str(s.site), "--name", "alice")
        pport, gport = free_port(), free_port()
        procs.append(_spawn(env, home / "proxy.log", "proxy", "--listen", f"127.0.0.1:{pport}"))
        procs.append(_spawn(env, home / "gateway.log", "gateway", "--listen", f"127.0.0.1:{gport}",
                            "--tenants", str(_tenants(home))))  # fmt: skip
        _wait_listening(pport, home / "proxy.log", procs[0])
        _wait_listening(gport, home / "gateway.log", procs[1])
        s.proxy, s.gateway_port = f"http://127.0.0.1:{pport}", gport
        yield s
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
        devnet.down()


@pytest.fixture(scope="module")
def browser(sites: Sites, playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, f"--proxy-server={sites.proxy}"])
    try:
        yield b
    finally:
        b.close()


def _one_error(p: subprocess.CompletedProcess[bytes], *words: str) -> None:
    err = p.stderr.decode().strip().splitlines()
    assert p.returncode != 0 and len(err) == 1 and err[0].startswith("veil: error: "), p.stderr
    assert all(w in err[0] for w in words), err[0]


def _proxied(sites: Sites, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sites.proxy}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_site_in_chromium_through_the_proxy(sites: Sites, browser: Browser) -> None:
    page = browser.new_page()
    try:
        r = page.goto("http://alice.veil/", timeout=120_000)
        assert r is not None and r.status == 200 and "text/html" in r.headers["content-type"]
        assert page.text_content("#v") == "first"
        # the image loaded and decoded (1x1)
        page.wait_for_function("document.getElementById('dot').complete", timeout=60_000)
        assert page.evaluate("document.getElementById('dot').naturalWidth") == 1
        page.click("a")
        page.wait_for_selector("#who", timeout=60_000)
        assert page.url == "http://alice.veil/about/"
        r = page.goto("http://alice.veil/about", timeout=120_000)  # a folder without the slash: redirected
        assert page.url == "http://alice.veil/about/" and page.text_content("#who") == "about alice"
        r = page.goto("http://alice.veil/no/such/page", timeout=120_000)
        assert r is not None and r.status == 404 and page.text_content("#lost") == "alice has no such page"
        r = page.goto("http://example.com/", timeout=60_000)
        assert r is not None and r.status == 403 and "not a .veil name" in (page.text_content("body") or "")
    finally:
        page.close()


def test_ranges_and_errors(sites: Sites) -> None:
    # the devnet has relays, so the proxy fetches every page over onion circuits
    assert "over onion circuits" in (sites.home / "proxy.log").read_text()
    clip = (sites.site / "media" / "clip.bin").read_bytes()
    status, h, body = _proxied(sites, "http://alice.veil/media/clip.bin", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == clip[1000:2000] and h["Content-Range"] == f"bytes 1000-1999/{len(clip)}"
    status, h, body = _proxied(sites, "http://alice.veil/media/clip.bin", {"Range": "bytes=-10"})
    assert status == 206 and body == clip[-10:]
    status, h, _ = _proxied(sites, "http://alice.veil/media/clip.bin", {"Range": f"bytes={len(clip)}-"})
    assert status == 416 and h["Content-Range"] == f"bytes */{len(clip)}"
    status, h, body = _proxied(sites, "http://alice.veil/media/dot.png")
    assert status == 200 and h["Content-Type"] == "image/png" and body == PNG
    status, _, body = _proxied(sites, "http://nobody-here.veil/")
    assert status == 404 and b"unregistered" in body
    status, _, body = _proxied(sites, "http://bad_name.veil/")
    assert status == 400


def test_subname_site_and_republish(sites: Sites, browser: Browser, tmp_path: Path) -> None:
    # blog.alice.veil: a subname alice keeps for herself, with its own site
    sites.veil("name", "sub", "alice", "blog", "--owner", sites.alice.address_text)
    blog = tmp_path / "blog"
    blog.mkdir()
    (blog / "index.html").write_text("<!doctype html><title>Blog</title><p id='post'>hello from the blog</p>")
    (blog / "post.txt").write_text("plain text post")
    sites.veil("site", "publish", str(blog), "--name", "blog.alice")
    # refusals: one clear line each, before anything is uploaded
    bob = create_wallet(tmp_path / "bob.wallet", PASS, m_cost_kib=1024)
    _one_error(sites.veil("site", "publish", str(tmp_path / "nope"), "--name", "alice", check=False), "not a directory")
    _one_error(sites.veil("site", "publish", str(blog), "--name", "nobody-here", check=False), "unregistered")
    _one_error(sites.veil("site", "publish", str(blog), "--name", "alice", check=False, wallet=bob), "another address")
    status, h, body = _proxied(sites, "http://blog.alice.veil/post.txt")
    assert status == 200 and h["Content-Type"].startswith("text/plain") and body == b"plain text post"

    # republish alice: the same folder is updated in place, the record is not touched
    (sites.site / "index.html").write_text('<!doctype html><title>Alice</title><h1 id="v">second</h1>')
    (sites.site / "about" / "index.html").unlink()
    out = sites.veil("site", "publish", str(sites.site), "--name", "alice").stdout.decode()
    assert "updated in place" in out
    page = browser.new_page()
    try:
        deadline = time.monotonic() + 60  # the proxy reuses a checked site record for 10 s; the folder is re-read
        while True:
            page.goto("http://alice.veil/", timeout=120_000)
            if page.text_content("#v") == "second" or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert page.text_content("#v") == "second"
        r = page.goto("http://alice.veil/about/", timeout=120_000)
        assert r is not None and r.status == 404
        r = page.goto("http://blog.alice.veil/", timeout=120_000)
        assert r is not None and r.status == 200 and page.text_content("#post") == "hello from the blog"
    finally:
        page.close()


def _gateway(sites: Sites, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", sites.gateway_port, timeout=120)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_gateway_serves_sites_under_two_tenants(sites: Sites) -> None:
    clip = (sites.site / "media" / "clip.bin").read_bytes()
    for host, brand in (("alpha.localhost", "Alpha Files"), ("beta.localhost", "Beta Vault")):
        status, h, body = _gateway(sites, host, "/n/alice.veil/media/dot.png")
        assert status == 200 and body == PNG and h["Content-Type"] == "image/png"
        assert h["Content-Security-Policy"].startswith("sandbox")  # the site's scripts get an opaque origin
        status, h, body = _gateway(sites, host, "/n/alice.veil/media/clip.bin?x=1")
        assert status == 200 and body == clip
        status, h, _ = _gateway(sites, host, "/n/alice.veil")
        assert status == 301 and h["Location"] == "/n/alice.veil/"
        status, _, body = _gateway(sites, host, "/n/alice.veil/")
        assert status == 200 and b'id="v"' in body
        status, _, body = _gateway(sites, host, "/n/alice.veil/missing")
        assert status == 404 and b"alice has no such page" in body  # the site's own 404 page
        status, _, body = _gateway(sites, host, "/n/nobody-here.veil/")
        assert status == 404 and brand.encode() in body and b"unregistered" in body  # the tenant's brand
    status, _, _ = _gateway(sites, "unknown.localhost", "/n/alice.veil/")
    assert status == 404
