"""White label, embedding and the no-key-on-server property, against a `veil gateway
--tenants` process on the test devnet."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_browser import ARTIFACTS, Env, RecordingProxy, download_in_page, random_file, upload_in_page
from playwright.sync_api import Page

from veil.format.base32 import b32decode
from veil.format.caps import parse_read_cap

pytestmark = pytest.mark.browser


def test_two_tenants_show_their_own_brand(env: Env, page: Page, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    seen = {}
    accent_hex = {"alpha.localhost": "#d0442c", "beta.localhost": "#1e7d4f"}
    for host, name, accent, footer in (
        ("alpha.localhost", "Alpha Files", "rgb(208, 68, 44)", "Alpha terms"),
        ("beta.localhost", "Beta Vault", "rgb(30, 125, 79)", "Beta privacy"),
    ):
        page.goto(env.host_url(host) + "/")
        page.wait_for_selector("body[data-loaded='1']")
        assert page.title() == name
        assert page.inner_text("#tenant-name") == name
        assert page.eval_on_selector("#choose", "e => getComputedStyle(e).backgroundColor") == accent
        assert footer in page.inner_text("footer")
        assert page.eval_on_selector(".brand img", "i => i.complete && i.naturalWidth > 0")
        assert accent_hex[host] in page.evaluate("fetch('/brand/logo').then(r => r.text())")
        page.screenshot(path=str(ARTIFACTS / f"gateway-tenant-{host.split('.')[0]}.png"), full_page=True)
        seen[host] = page.content()
    assert "Beta Vault" not in seen["alpha.localhost"] and "Alpha Files" not in seen["beta.localhost"]

    # Beta's limits: 1 MB, images and text only, enforced in the page (types) and the API (size).
    page.goto(env.host_url("beta.localhost") + "/")
    assert "1.0 MB" in page.inner_text("#limits")
    big = random_file(tmp_path / "big.txt", 2 * 10**6, seed=3)
    page.wait_for_selector("body[data-loaded='1']")
    page.set_input_files("#file-input", str(big))
    page.wait_for_selector("li.upload[data-state='failed']")
    assert "accepts up to 1.0 MB" in page.inner_text("li.upload")
    refused = page.evaluate("""async () => {
        const r = await fetch('/api/uploads', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({si: '00'.repeat(16), size: 2000000, segsize: 1048576, meta: btoa('x'.repeat(160))})});
        return [r.status, (await r.json()).error];
    }""")
    assert refused == [413, "too_large"]  # refused before anything is stored


def test_unknown_host_gets_a_clear_404(env: Env, page: Page) -> None:
    resp = page.goto(env.host_url("nobody.localhost") + "/")
    assert resp is not None and resp.status == 404
    assert "not served here" in page.content() and page.title() == "Site not found"


class _EmbedSite:
    """A customer's site on another origin, with the snippet pasted in."""

    def __init__(self, port: int, gateway: str) -> None:
        page = f"""<!doctype html><html><head><title>Customer site</title></head><body>
<h1>Customer site</h1>
<iframe id="veil" src="{gateway}/embed" title="Upload files" width="100%" height="360" style="border:0"></iframe>
<ul id="links"></ul>
<script>
window.addEventListener("message", (e) => {{
  if (e.origin !== "{gateway}" || !e.data || e.data.type !== "veil:uploaded") return;
  const li = document.createElement("li"); li.textContent = e.data.link; li.dataset.name = e.data.name;
  document.getElementById("links").append(li);
}});
</script></body></html>""".encode()

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def embed_site(env: Env) -> Iterator[str]:
    port = int(env.embed_origin.rsplit(":", 1)[1])
    site = _EmbedSite(port, env.host_url("alpha.localhost"))
    try:
        yield env.embed_origin
    finally:
        site.server.shutdown()
        site.server.server_close()


def test_embed_widget_on_another_origin(env: Env, page: Page, embed_site: str, tmp_path: Path) -> None:
    page.goto(embed_site + "/")
    frame = page.frame_locator("#veil")
    frame.locator("body[data-loaded='1']").wait_for()
    src = random_file(tmp_path / "embedded.bin", 300_000, seed=7)
    frame.locator("#file-input").set_input_files(str(src))
    page.wait_for_selector("#links li", timeout=60_000)
    link = page.inner_text("#links li")
    assert page.get_attribute("#links li", "data-name") == "embedded.bin"
    assert link.startswith(env.host_url("alpha.localhost") + "/f/")
    out = tmp_path / "embedded-back.bin"
    env.veil("get", link, "-o", str(out))
    assert out.read_bytes() == src.read_bytes()
    page.screenshot(path=str(ARTIFACTS / "gateway-embed.png"), full_page=True)


def test_embedding_is_refused_to_unlisted_origins(env: Env, page: Page) -> None:
    # Beta lists no embed origins; the main page may never be framed.
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.set_content(
        f'<iframe id="a" src="{env.host_url("beta.localhost")}/embed"></iframe>'
        f'<iframe id="b" src="{env.host_url("alpha.localhost")}/"></iframe>'
    )
    page.wait_for_timeout(1500)
    for fid in ("a", "b"):
        frame = page.frame_locator(f"#{fid}")
        assert frame.locator("#main").count() == 0
    assert blocked


def test_no_key_ever_reaches_the_gateway(env: Env, page: Page, tmp_path: Path) -> None:
    proxy = RecordingProxy(env.branded_port)
    try:
        origin = f"http://127.0.0.1:{proxy.port}"
        src = random_file(tmp_path / "secret-name-7f3a.bin", 2 * (1 << 20) + 99, seed=13)
        page.goto(origin + "/")
        [link] = upload_in_page(page, [src])
        got = download_in_page(page, link, tmp_path / "back.bin")
        assert got.read_bytes() == src.read_bytes()
        # and a CLI upload opened through the same gateway
        cli_link = env.put(src).split("/f/", 1)[1]
        download_in_page(page, f"{origin}/f/{cli_link}", tmp_path / "back2.bin")
    finally:
        proxy.close()
    wire = bytes(proxy.received)
    log = env.branded_log.read_bytes()
    assert b"PUT /api/uploads/" in wire and b"GET /api/files/" in wire  # the recording saw the traffic
    for lnk in (link, f"{origin}/f/{cli_link}"):
        key_part = lnk.split("#", 1)[1]
        key = parse_read_cap(lnk).file_key
        assert b32decode(key_part)[:32] == key
        forms = [key_part.encode(), key_part.upper().encode(), key, key.hex().encode(), key.hex().upper().encode()]
        import base64

        forms += [base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")]
        for form in forms:
            assert form not in wire, "key material reached the gateway"
            assert form not in log, "key material in the gateway's log"
    # Nor the file name: it travels sealed.
    assert b"secret-name-7f3a" not in wire and b"secret-name-7f3a" not in log
    assert b"#" not in b"".join(line for line in wire.split(b"\r\n") if line.startswith((b"GET ", b"PUT ", b"POST ")))
