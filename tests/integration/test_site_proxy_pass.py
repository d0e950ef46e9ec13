"""`veil proxy --pass-through` forwards plain-HTTP requests for other hosts to a real upstream
server on 127.0.0.1; without it they are refused with a 403 page; .veil sites are read-only.
(Serving .veil sites is tested on a devnet with chromium: tests/browser/test_sites_proxy.py.)"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veil.client.sites import SiteReader
from veil.gateway.site_proxy import start_proxy
from veil.net.server import HTTPSServer


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"upstream saw {self.path} for {self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "yes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def _proxy(pass_through: bool) -> HTTPSServer:
    reader = SiteReader(None, lambda: None)  # type: ignore[arg-type]  # no .veil host is asked here
    return start_proxy("127.0.0.1", 0, reader, pass_through)


def _ask(proxy: HTTPSServer, method: str, url: str, host: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.server_address[1], timeout=30)
    try:
        conn.request(method, url, headers={"Host": host})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def test_pass_through_forwards_and_default_refuses(upstream: int) -> None:
    host = f"127.0.0.1:{upstream}"
    on, off = _proxy(True), _proxy(False)
    try:
        status, h, body = _ask(on, "GET", f"http://{host}/a/b?x=1", host)
        assert status == 200 and body == f"upstream saw /a/b?x=1 for {host}".encode() and h["X-Upstream"] == "yes"
        status, _, body = _ask(off, "GET", f"http://{host}/a", host)
        assert status == 403 and b"not a .veil name" in body
        status, h, _ = _ask(off, "POST", "http://alice.veil/", "alice.veil")
        assert status == 405 and h["Allow"] == "GET, HEAD"
        status, _, _ = _ask(on, "CONNECT", "alice.veil:443", "alice.veil:443")
        assert status == 400  # the parser refuses authority-form: no tunnels through this proxy
    finally:
        for p in (on, off):
            p.shutdown()
            p.server_close()
