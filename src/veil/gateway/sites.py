"""Sites over HTTP: a ``client.sites.Page`` as a response, and the gateway's
``/n/alice.veil/...`` route, which serves public sites under each tenant's brand
(docs/specs/sites.md).

A site is someone else's HTML on the gateway's origin, so its responses carry a CSP ``sandbox``
(an opaque origin: its scripts cannot read the gateway's storage, cookies or API as the
gateway's own pages) and may be embedded by nothing. What the gateway says itself (an unknown
name, a name without a site, nodes unreachable) is the tenant's branded page.

Imports from: veil.client, veil.errors, veil.net, veil.gateway.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path

from veil.client.names import NameClient, default_floor_path, default_ledger
from veil.client.network import Network
from veil.client.sites import Page, SiteReader, site_name
from veil.errors import NotFoundError, VeilError
from veil.gateway.tenants import Tenant
from veil.net.server import Request, Response, error_status

Wrap = Callable[[Callable[[Request, Tenant], Response]], Callable[[Request], Response]]

# Scripts run, in an opaque origin; nothing else of the gateway's is reachable from the page.
SITE_CSP = "sandbox allow-scripts allow-forms allow-popups; frame-ancestors 'none'"


def page_response(page: Page) -> Response:
    headers = {"Cache-Control": "no-cache", **page.headers}
    if page.length is not None and not page.body:
        return Response(page.status, [b""], page.content_type, headers, page.length)
    return Response(page.status, page.body, page.content_type, headers)


def message_page(status: int, title: str, message: str, extra: str = "") -> Response:
    esc = html.escape
    body = (f"<!doctype html><meta charset=utf-8><title>{esc(title)}</title>{extra}"
            f"<h1>{esc(title)}</h1><p>{esc(message)}</p>\n")  # fmt: skip
    return Response(status, body.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})


def site_error(e: VeilError) -> tuple[int, str]:
    """The status and title for an error while serving a site."""
    if isinstance(e, NotFoundError):
        return 404, "No such site"
    status, _ = error_status(e)
    return status, "Site unavailable" if status >= 500 else "Cannot serve this site"


class SiteRoutes:
    """``GET|HEAD /n/{host}[/path]`` on the gateway."""

    def __init__(self, wrap: Wrap, network: Callable[[], Network], network_path: Path | None) -> None:
        self.wrap = wrap  # the gateway's: tenant by Host, its headers, its errors
        self.network = network
        self.network_path = network_path
        self._lock = threading.Lock()
        self._reader: SiteReader | None = None

    def reader(self) -> SiteReader:
        with self._lock:
            if self._reader is None:
                names = NameClient(default_ledger(self.network_path), default_floor_path())
                self._reader = SiteReader(names, self.network)
            return self._reader

    def add_to(self, add: Callable[[str, str, Callable[[Request], Response]], None]) -> None:
        for method in ("GET", "HEAD"):
            add(method, "/n/{host}", self._handler(False))
            add(method, "/n/{host}/(?P<rest>.*)", self._handler(True))

    def _handler(self, with_rest: bool) -> Callable[[Request], Response]:
        wrapped = self.wrap(lambda req, tenant: self.serve(req, tenant, with_rest))

        def handler(req: Request) -> Response:
            resp = wrapped(req)
            if resp.headers.get("X-Veil-Site") == "1":
                resp.headers["Content-Security-Policy"] = SITE_CSP
                resp.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # pages load their images
            return resp

        return handler

    def serve(self, req: Request, tenant: Tenant, with_rest: bool) -> Response:
        host = req.params["host"]
        name = site_name(host)
        if name is None:
            return self._branded(tenant, 404, "No such site", f"{host} is not a .veil name")
        path = "/" + req.params.get("rest", "") if with_rest else ""
        try:
            page = self.reader().page(name, path, req.headers.get("Range"), req.method == "HEAD", prefix=f"/n/{name}")
        except VeilError as e:
            status, title = site_error(e)
            return self._branded(tenant, status, title, str(e))
        resp = page_response(page)
        resp.headers["X-Veil-Site"] = "1"
        return resp

    def _branded(self, tenant: Tenant, status: int, title: str, message: str) -> Response:
        brand = f'<link rel="stylesheet" href="/brand.css"><p class="brand">{html.escape(tenant.name)}</p>'
        return message_page(status, f"{title} — {tenant.name}", message, brand)
