"""Issue 16, white label: every visible text of the pages from tenants.toml; a browser on an
unknown host gets an HTML page; the embed snippet only where the tenant wants it; HTTPS with
each tenant's own certificate chosen by SNI; `veil devnet up --tenants FILE`.

One small devnet of this module, started by the real CLI with a tenants file (its gateway node
serves the tenants), and one `veil gateway --tls-listen` on the same network for HTTPS.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from gateway_browser import wait_http
from playwright.sync_api import Browser

from veil.client.network import load_network
from veil.devnet.specs import free_port

pytestmark = pytest.mark.browser

DEFAULT_TEXTS = ("Share files, encrypted", "End-to-end encrypted with Veil", "Choose files", "Drop files here")


@dataclass
class WL:
    http: str  # the devnet's gateway node (plain HTTP), port only matters
    http_port: int
    tls_port: int
    ca: trustme.CA
    certs: dict[str, bytes]  # host -> DER of the certificate the tenant configured
    tenants: Path
    env: dict[str, str]


def _write_tenants(d: Path, ca: trustme.CA) -> tuple[Path, dict[str, bytes]]:
    certs: dict[str, bytes] = {}
    for name in ("gamma", "delta"):
        leaf = ca.issue_cert(f"{name}.localhost")
        leaf.private_key_pem.write_to_path(str(d / f"{name}.key"))
        leaf.cert_chain_pems[0].write_to_path(str(d / f"{name}.crt"))
        certs[f"{name}.localhost"] = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    path = d / "tenants.toml"
    path.write_text("""
unknown_host = "404"
default = "gamma"

[tenant.gamma]
hosts = ["gamma.localhost", "127.0.0.1"]
name = "Gamma Drop"
cert = "gamma.crt"
key = "gamma.key"
show_embed = true
embed_origins = ["https://www.gamma.example"]
footer = [{ label = "Gamma terms", url = "https://gamma.example/terms" }]

[tenant.gamma.texts]
heading = "Drop it at Gamma"
intro = "Gamma keeps your files sealed."
footer_note = "Operated by Gamma GmbH"
choose = "Pick files"
drop_hint = "Drag here or"
my_files = "Your uploads"

[tenant.delta]
hosts = ["delta.localhost"]
name = "Delta Box"
cert = "delta.crt"
key = "delta.key"
texts = { heading = "Delta heading", intro = "Delta intro." }
""")
    return path, certs


@pytest.fixture(scope="module")
def wl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WL]:
    home = tmp_path_factory.mktemp("veil-wl")
    ca = trustme.CA()
    tenants, certs = _write_tenants(home, ca)
    env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet")}
    up = subprocess.run([sys.executable, "-m", "veil.cli.main", "devnet", "up", "--nodes", "3", "--relays", "0",
                         "--tenants", str(tenants)], env=env, capture_output=True, timeout=600)
    assert up.returncode == 0, up.stderr.decode()
    assert f"tenants from {tenants}" in up.stdout.decode()
    gw_proc = None
    try:
        net = load_network(home / "devnet" / "network.json")
        assert net.gateway is not None
        http_port = int(net.gateway.rsplit(":", 1)[1])
        tls_port = free_port()
        log = open(home / "tls-gateway.log", "wb")
        gw_proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "gateway", "--listen", f"127.0.0.1:{free_port()}",
             "--tls-listen", f"127.0.0.1:{tls_port}", "--tenants", str(tenants),
             "--network", str(home / "devnet" / "nodes.json")],
            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        wait_http(net.gateway + "/api/openapi.json")
        _wait_tls(tls_port)
        yield WL(net.gateway, http_port, tls_port, ca, certs, tenants, env)
    finally:
        if gw_proc is not None:
            gw_proc.terminate()
            gw_proc.wait(10)
        subprocess.run([sys.executable, "-m", "veil.cli.main", "devnet", "down"], env=env, capture_output=True,
                       timeout=120)


def _wait_tls(port: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _cert_for(port: int, host: str, ca: trustme.CA) -> bytes:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:  # verifies chain and host name
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_devnet_up_with_tenants_serves_every_text_of_the_tenant(wl: WL, browser: Browser) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"http://gamma.localhost:{wl.http_port}/")
        page.wait_for_selector("body[data-loaded='1']")
        assert page.inner_text("#upload-title") == "Drop it at Gamma"
        assert page.inner_text("#intro") == "Gamma keeps your files sealed."
        assert page.inner_text("#footer-note") == "Operated by Gamma GmbH"
        assert page.inner_text("#choose") == "Pick files"
        assert page.inner_text("#myfiles-title") == "Your uploads"
        assert "Gamma terms" in page.inner_text("footer")
        body = page.inner_text("body")
        for text in DEFAULT_TEXTS:
            assert text not in body, text
        # Gamma wants the embed snippet shown; Delta does not.
        assert page.is_visible("#embed-help")
        assert "/embed" in page.input_value("#embed-snippet")
        page.goto(f"http://delta.localhost:{wl.http_port}/")
        page.wait_for_selector("body[data-loaded='1']")
        assert page.inner_text("#upload-title") == "Delta heading"
        assert page.inner_text("#intro") == "Delta intro."
        assert page.inner_text("#footer-note") == "End-to-end encrypted with Veil"  # a text it left alone
        assert not page.is_visible("#embed-help")
        assert page.input_value("#embed-snippet") == ""
    finally:
        ctx.close()


def test_an_unknown_host_gets_an_html_page_in_a_browser_and_json_from_the_api(wl: WL, browser: Browser) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        resp = page.goto(f"http://nowhere.localhost:{wl.http_port}/some/page")
        assert resp is not None and resp.status == 404
        assert resp.headers["content-type"].startswith("text/html")
        assert page.title() == "Site not found"
        assert "not served here" in page.inner_text("body")
        assert "Content-Security-Policy" in {k.title() for k in resp.headers} or "content-security-policy" in resp.headers
    finally:
        ctx.close()
    req = urllib.request.Request(f"http://127.0.0.1:{wl.http_port}/api/tenant", headers={"Host": "nowhere.example"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 404 and exc.value.headers["Content-Type"] == "application/json"
    assert b'"unknown_host"' in exc.value.read()


def test_each_tenant_gets_its_own_certificate_by_sni(wl: WL, browser: Browser) -> None:
    for host, der in wl.certs.items():
        assert _cert_for(wl.tls_port, host, wl.ca) == der, host
    assert wl.certs["gamma.localhost"] != wl.certs["delta.localhost"]
    # A name no tenant lists gets the default tenant's certificate.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", wl.tls_port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="other.localhost") as tls:
            assert tls.getpeercert(binary_form=True) == wl.certs["gamma.localhost"]
    # And chromium gets each tenant's page over it.
    bctx = browser.new_context(ignore_https_errors=True)
    try:
        page = bctx.new_page()
        page.goto(f"https://delta.localhost:{wl.tls_port}/")
        page.wait_for_selector("body[data-loaded='1']")
        assert page.inner_text("#upload-title") == "Delta heading"
        assert page.evaluate("window.isSecureContext") is True
    finally:
        bctx.close()


def test_bad_tenants_files_fail_in_one_line(wl: WL, tmp_path: Path) -> None:
    cases = {
        'texts = { headline = "x" }': "unknown text",
        'cert = "gamma.crt"': "cert and key go together",
        'show_embed = "yes"': "show_embed: expected true or false",
    }
    for extra, message in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(f'[tenant.x]\nhosts = ["x.localhost"]\n{extra}\n')
        (tmp_path / "gamma.crt").write_text("")
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", "gateway", "--tenants", str(bad),
                            "--listen", f"127.0.0.1:{free_port()}"], env=wl.env, capture_output=True, timeout=60)
        assert p.returncode == 2, (extra, p.stderr)
        err = p.stderr.decode().strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    # HTTPS without any certificate is refused at start, too.
    plain = tmp_path / "plain.toml"
    plain.write_text('[tenant.x]\nhosts = ["x.localhost"]\n')
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "gateway", "--tenants", str(plain), "--listen",
                        f"127.0.0.1:{free_port()}", "--tls-listen", f"127.0.0.1:{free_port()}"], env=wl.env,
                       capture_output=True, timeout=60)
    assert p.returncode == 2 and "HTTPS needs a certificate" in p.stderr.decode(), p.stderr
