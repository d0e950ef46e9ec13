"""``veil proxy``: a local HTTP proxy through which an ordinary browser opens ``http://alice.veil/``
(docs/specs/sites.md).

A browser set to use an HTTP proxy sends ``GET http://alice.veil/path HTTP/1.1``; the project's
server (net/server.py, http1.py) reduces that absolute form to the path and checks the Host
agrees, so every request here has a Host. A ``.veil`` host is served from its site folder
(client/sites.py: the name checked against a signed block). Any other host is refused with a
403 page unless the proxy was started with ``--pass-through``, which forwards plain-HTTP GET and
HEAD requests (CONNECT, and so https through the proxy, is refused by the parser with 400).
Listening anywhere but a loopback address is the user's choice; the CLI warns.

Imports from: veil.client, veil.errors, veil.net, veil.gateway.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from urllib.parse import unquote, urlencode, urlsplit

from veil.client.sites import SiteReader, site_name
from veil.errors import VeilError
from veil.gateway.sites import message_page, page_response, site_error
from veil.net.server import Handler, HTTPError, HTTPSServer, Request, Response, Router, serve

log = logging.getLogger("veil.proxy")
UPSTREAM_TIMEOUT = 30.0
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade", "content-length", "host"}  # fmt: skip
PROXY_CSP = "frame-ancestors 'none'"


class SiteProxy(Router):
    """Every path of every host goes to ``handle``."""

    def __init__(self, reader: SiteReader, pass_through: bool = False) -> None:
        super().__init__()
        self.reader = reader
        self.pass_through = pass_through

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        return self.handle, {}

    def handle(self, req: Request) -> Response:
        req.route = "proxy"
        host = req.headers.get("Host") or ""
        name = site_name(host)
        if name is None:
            if self.pass_through:
                return self.forward(req, host)
            return message_page(403, "Refused by veil proxy",
                                f"{host or 'this host'} is not a .veil name; this proxy serves only .veil sites "
                                "(start it with --pass-through to forward other plain-HTTP hosts)")  # fmt: skip
        if req.method not in ("GET", "HEAD"):
            raise HTTPError(405, "method_not_allowed", "a .veil site is read-only: GET or HEAD", {"Allow": "GET, HEAD"})
        try:
            page = self.reader.page(name, unquote(req.path), req.headers.get("Range"), req.method == "HEAD")
        except VeilError as e:
            status, title = site_error(e)
            return message_page(status, title, str(e))
        resp = page_response(page)
        resp.headers.setdefault("Content-Security-Policy", PROXY_CSP)
        return resp

    def forward(self, req: Request, host: str) -> Response:
        if req.method not in ("GET", "HEAD"):
            return message_page(405, "Not forwarded", "--pass-through forwards only GET and HEAD")
        u = urlsplit("http://" + host)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(u.hostname or host, u.port or 80, timeout=UPSTREAM_TIMEOUT)
        try:
            target = req.path + (f"?{urlencode(req.query)}" if req.query else "")
            conn.request(req.method, target, headers={**headers, "Host": host, "Connection": "close"})
            up = conn.getresponse()
        except OSError as e:
            conn.close()
            return message_page(502, "Upstream unreachable", f"{host}: {e}")
        length = up.getheader("Content-Length")
        out = {k: v for k, v in up.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"}
        ctype = up.getheader("Content-Type") or "application/octet-stream"
        if length is None or not length.isdigit():
            body = up.read()
            conn.close()
            return Response(up.status, body, ctype, out)

        def stream() -> Iterator[bytes]:
            try:
                while chunk := up.read(65536):
                    yield chunk
            finally:
                conn.close()

        return Response(up.status, stream(), ctype, out, int(length))


def start_proxy(host: str, port: int, reader: SiteReader, pass_through: bool = False) -> HTTPSServer:
    """Listen on host:port (plain HTTP, as browsers speak to a proxy); serving in the background."""
    return serve((host, port), SiteProxy(reader, pass_through), None,
                 default_headers={"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})  # fmt: skip
