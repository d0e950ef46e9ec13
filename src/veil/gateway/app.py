"""The gateway's HTTP application: routes, handlers, pages, and the server around them.

Plain HTTP on the threaded server of ``veil.net.server`` (TLS belongs to the reverse proxy
or load balancer in front, as for any web app; browsers treat 127.0.0.1/localhost as secure
for WebCrypto). Every response carries the security headers of ``security.py``; every
request body is bounded before it is read. Access lines name method, path and status only:
share-link keys live in URL fragments, which browsers never send, and nothing the page sends
contains a key (docs/specs/gateway.md, "What the gateway sees"). The visitor's address, the
request id and the access log are gateway/access.py's; metrics are node/metrics.py's
(docs/specs/operations.md).
"""

from __future__ import annotations

import html
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from veil.client.network import Network, load_network
from veil.client.tickets import Tickets
from veil.errors import NotFoundError, VeilError
from veil.format.caps import SI_SIZE
from veil.gateway import openapi
from veil.gateway import wallet as wallet_pages
from veil.gateway.access import REQUEST_ID_HEADER, access_observer, begin, client_of, logged_path
from veil.gateway.files import FileReader
from veil.gateway.folders import SlotGateway
from veil.gateway.jsonapi import b64_field as _b64
from veil.gateway.jsonapi import hex_field as _hex
from veil.gateway.jsonapi import int_field as _int
from veil.gateway.jsonapi import json_error, json_response, read_json
from veil.gateway.jsonapi import verify_param as _verify
from veil.gateway.pay import GatewayWallet, TermsCache, download_cost, holder_nodes
from veil.gateway.proxies import TrustedProxies
from veil.gateway.security import security_headers
from veil.gateway.sites import SiteRoutes
from veil.gateway.tenants import Tenant, TenantSet
from veil.gateway.uploads import MAX_BATCH_BYTES, UploadManager
from veil.gateway.visitor import answer_for, log_failure, unknown_host_page
from veil.ledger.params import Params
from veil.net.server import HTTPError, HTTPSServer, Request, Response, Router, serve
from veil.node.metrics import Metrics
from veil.node.metrics_http import health_response
from veil.node.metrics_roles import role_metrics

log = logging.getLogger("veil.gateway")
access_log = logging.getLogger("veil.gateway.access")

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8", ".png": "image/png",
                ".json": "application/json"}
STATIC_FILES = ("app.js", "common.js", "upload.js", "myfiles.js", "folder-app.js", "veil-format.js", "veil-folder.js",
                "veil-zip.js", "style.css", "logo.svg")
_local = threading.local()


@dataclass
class GatewayConfig:
    network_path: Path | None = None
    tenants: TenantSet = field(default_factory=TenantSet)
    k: int = 3
    n: int = 10
    happy: int | None = None
    max_uploads: int = 64
    network: Network | None = None  # fixed network (tests); otherwise the file is re-read when it changes
    wallet: GatewayWallet | None = None  # pays nodes that charge for downloads (--wallet)
    anon_hops: int = 0  # > 0: every storage and DHT request over onion circuits of this many relays
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)  # whose Forwarded/X-Forwarded-For count
    metrics: Metrics | None = None  # the process's registry (a node's, with the gateway role); None: its own


class NetworkSource:
    """The network file, re-read when it changes (a devnet writes it after the gateway starts)."""

    def __init__(self, path: Path | None, fixed: Network | None = None, tickets: Tickets | None = None,
                 anon_hops: int = 0) -> None:  # fmt: skip
        self.path = path
        self._fixed = fixed
        self.anon_hops = anon_hops
        self.tickets = tickets  # signs storage tickets for nodes that admit by ticket (the gateway's wallet)
        if fixed is not None and tickets is not None:
            fixed.tickets = tickets
        self._lock = threading.Lock()
        self._net: Network | None = None
        self._stamp: tuple[int, int] | None = None

    def __call__(self) -> Network:
        if self._fixed is not None:
            return self._fixed
        from veil.client.network import default_network_path

        p = self.path or default_network_path()
        try:
            st = os.stat(p)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if self._net is None or stamp != self._stamp:
                old = self._net
                net = load_network(p)
                if self.anon_hops:  # (TooFewRelays here is the request's error, one line)
                    net.use_circuits(self.anon_hops)
                net.tickets = self.tickets or net.tickets  # (a devnet's uploader key: load_network)
                self._net = net
                self._stamp = stamp
                if old is not None:
                    old.close()
            return self._net


def _static_bytes(name: str) -> bytes:
    return resources.files("veil.gateway").joinpath("static", name).read_bytes()


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        w = config.wallet
        # Browser uploads to nodes that admit storage by ticket are charged to the gateway's account.
        self.network = NetworkSource(config.network_path, config.network,
                                     Tickets(lambda: w.wallet.key) if w is not None else None,
                                     config.anon_hops)  # fmt: skip
        self.uploads = UploadManager(self.network, config.max_uploads)
        self.files = FileReader(self.network, wallet=config.wallet)
        self.slots = SlotGateway(self.network)
        self.terms = TermsCache()
        self.static = {name: _static_bytes(name) for name in STATIC_FILES} | wallet_pages.static_files()
        self.sw = _static_bytes("sw.js")
        self.template = _static_bytes("app.html").decode()
        params = Params("veil")
        self.allowance = {"bytes": params.allowance_bytes, "period_seconds": params.epoch_seconds,
                          "source": "this gateway's wallet pays for visitors' downloads from this allowance, "
                                    "then from its balance, within its limits"}
        self.router = GatewayRouter(self)
        self._routes()
        self.server: HTTPSServer | None = None
        self.tls_server: HTTPSServer | None = None
        self.metrics = config.metrics or Metrics()
        if config.metrics is None:  # a node's registry reads the gateway role's status itself
            self.metrics.add_source(role_metrics(lambda: {"gateway": self.status()}))

    # -- plumbing -------------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router
        r.add("GET", "/healthz", lambda req: health_response(self.health))  # any Host: for load balancers
        r.add("GET", "/", self._page("upload"))
        r.add("GET", "/embed", self._page("embed"))
        r.add("GET", "/f/{verify}", self._page("file"))
        r.add("GET", "/d/{slot}", self._page("folder"))
        r.add("GET", "/dl/{token}", self._page("nohelper", status=404))
        r.add("GET", "/static/{name}", self._wrap(self.static_file))
        r.add("GET", "/sw.js", self._wrap(self.service_worker))
        r.add("GET", "/brand.css", self._wrap(self.brand_css))
        r.add("GET", "/brand/logo", self._wrap(self.logo))
        r.add("GET", "/favicon.ico", self._wrap(self.logo))
        r.add("GET", "/api/openapi.json", self._wrap(self.openapi_doc))
        r.add("GET", "/api/tenant", self._wrap(self.tenant_info))
        r.add("POST", "/api/uploads", self._wrap(self.begin_upload))
        r.add("PUT", "/api/uploads/{uid}/segments", self._wrap(self.put_segments))
        r.add("POST", "/api/uploads/{uid}/finish", self._wrap(self.finish_upload))
        r.add("GET", "/api/uploads/{uid}", self._wrap(self.upload_status))
        r.add("DELETE", "/api/uploads/{uid}", self._wrap(self.abort_upload))
        r.add("GET", "/api/files/{verify}/manifest", self._wrap(self.manifest))
        r.add("GET", "/api/files/{verify}/segments", self._wrap(self.segments))
        r.add("GET", "/api/files/{verify}/cost", self._wrap(self.cost))
        r.add("POST", "/api/files/{verify}/delete", self._wrap(self.delete_file))
        r.add("GET", "/api/mutable/{slot}", self._wrap(lambda req, _t: self.slots.get_handler(req)))
        r.add("PUT", "/api/mutable/{slot}", self._wrap(lambda req, _t: self.slots.put_handler(req)))
        SiteRoutes(self._wrap, self.network, self.config.network_path).add_to(r.add)  # /n/alice.veil/...
        self.wallet_api = wallet_pages.WalletApi(self.network, json_response, r.add, self._wrap, self._page)

    def tenant(self, req: Request) -> Tenant:
        t = self.config.tenants.for_host(req.headers.get("Host"))
        if t is None:
            raise HTTPError(404, "unknown_host", "this gateway does not serve this host name")
        return t

    def _wrap(self, fn: Callable[[Request, Tenant], Response], embeddable: bool = False) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            rid = begin(req, self.config.trusted_proxies)
            tenant: Tenant | None = None
            try:
                tenant = self.tenant(req)
                req.extra["tenant"] = tenant.id
                resp = fn(req, tenant)
            except Exception as e:  # every failure: a sentence for the visitor, the details to the log
                a = answer_for(e)
                log_failure(rid, req.method, logged_path(req), e, a)
                page = unknown_host_page(req, a, rid) if tenant is None else None
                resp = page if page is not None else json_error(a.status, a.code, a.message, rid)
                resp.headers.update(a.headers)
            if not isinstance(resp.body, bytes | bytearray | memoryview) or resp.status >= 400 or "Cache-Control" not in resp.headers:
                resp.headers.setdefault("Cache-Control", "no-store")
            sec = security_headers(tenant, embeddable and resp.status < 400)
            for name in ("X-Frame-Options", "Cross-Origin-Opener-Policy"):
                sec.setdefault(name, "")  # "" drops the server's default (embeddable pages)
            resp.headers.update(sec)
            resp.headers[REQUEST_ID_HEADER] = rid
            return resp

        return handler

    def _page(self, mode: str, status: int = 200) -> Callable[[Request], Response]:
        def page(req: Request, tenant: Tenant) -> Response:
            return self.render(tenant, mode, status)

        return self._wrap(page, embeddable=mode == "embed")

    # -- pages ----------------------------------------------------------------------------
    def render(self, tenant: Tenant, mode: str, status: int = 200) -> Response:
        esc = html.escape
        footer = "".join(
            f'<li><a href="{esc(f.url)}" rel="noopener noreferrer">{esc(f.label)}</a></li>' for f in tenant.footer
        )
        body = (
            self.wallet_api.templates.get(mode, self.template).replace("{{name}}", esc(tenant.name))
            .replace("{{mode}}", esc(mode))
            .replace("{{tenant}}", esc(tenant.id))
            .replace("{{footer}}", footer)
            .replace("{{embed_hidden}}", "" if tenant.show_embed else " hidden")
        )
        for k, v in tenant.texts.items():
            body = body.replace("{{t." + k + "}}", esc(v))
        return Response(status=status, body=body.encode(), content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    def static_file(self, req: Request, tenant: Tenant) -> Response:
        name = req.params["name"]
        data = self.static.get(name)
        if data is None:
            raise HTTPError(404, "not_found", "no such file")
        ctype = STATIC_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
        return Response(body=data, content_type=ctype, headers={"Cache-Control": "no-cache"})

    def service_worker(self, req: Request, tenant: Tenant) -> Response:
        return Response(body=self.sw, content_type=STATIC_TYPES[".js"],
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/dl/"})

    def brand_css(self, req: Request, tenant: Tenant) -> Response:
        # Colours were checked to be #rgb/#rrggbb when the tenants file was loaded.
        lines = [f"  --{k}: {v};" for k, v in sorted(tenant.colors.items())]
        css = ":root {\n" + "\n".join(lines) + "\n}\n"
        return Response(body=css.encode(), content_type=STATIC_TYPES[".css"], headers={"Cache-Control": "no-cache"})

    def logo(self, req: Request, tenant: Tenant) -> Response:
        if tenant.logo is not None:
            return Response(body=tenant.logo, content_type=tenant.logo_type, headers={"Cache-Control": "no-cache"})
        return Response(body=self.static["logo.svg"], content_type="image/svg+xml", headers={"Cache-Control": "no-cache"})

    # -- API ------------------------------------------------------------------------------
    def openapi_doc(self, req: Request, tenant: Tenant) -> Response:
        return json_response(openapi.spec())

    def tenant_info(self, req: Request, tenant: Tenant) -> Response:
        # Visitors have no account of their own: the allowance is theirs only through a gateway that pays.
        pays = self.config.wallet is not None
        return json_response({**tenant.public(), "allowance": self.allowance if pays else None, "pays": pays,
                              "defaults": {"k": self.config.k, "n": self.config.n, "segsize": 1 << 20},
                              "max_batch_bytes": MAX_BATCH_BYTES})

    def begin_upload(self, req: Request, tenant: Tenant) -> Response:
        m = read_json(req)
        si = _hex(m, "si", SI_SIZE)
        size = _int(m, "size", 0, 2**53)
        segsize = _int(m, "segsize", 4096, 16 << 20)
        k = _int(m, "k", 1, 255) if "k" in m else self.config.k
        n = _int(m, "n", 1, 255) if "n" in m else self.config.n
        meta = _b64(m, "meta")
        delete = _hex(m, "delete", 32) if "delete" in m else None  # the browser's deletion commitment
        if extra := set(m) - {"si", "size", "segsize", "k", "n", "meta", "delete"}:
            raise HTTPError(400, "bad_request", f"unknown fields {sorted(extra)}")
        if size > tenant.max_file_size:
            raise HTTPError(413, "too_large", f"{tenant.name} accepts files of at most {tenant.max_file_size} bytes")
        s = self.uploads.begin(tenant.id, si, size, segsize, k, n, self.config.happy, meta, delete)
        return json_response({"id": s.id, "nseg": s.nseg, "k": s.uploader.k, "n": s.uploader.n,
                              "max_batch_bytes": MAX_BATCH_BYTES}, 201)

    def put_segments(self, req: Request, tenant: Tenant) -> Response:
        s = self.uploads.get(req.params["uid"], tenant.id)
        start = req.int_param("start")
        length = req.content_length
        if length > MAX_BATCH_BYTES:
            raise HTTPError(413, "too_large", f"a batch may hold at most {MAX_BATCH_BYTES} bytes")
        if not 0 <= start < s.nseg:
            raise HTTPError(400, "bad_request", f"start must be in [0, {s.nseg})")
        # Work out how many whole segments the body holds before reading a byte of it.
        sizes: list[int] = []
        total = 0
        while total < length and start + len(sizes) < s.nseg:
            total += s.ciphertext_len(start + len(sizes))
            sizes.append(total)
        if total != length or not sizes:
            raise HTTPError(400, "bad_request", "body is not a whole number of sealed segments from 'start'")
        buf = _batch_buffer(length)
        req.readinto_exact(buf)
        views = [buf[a:b] for a, b in zip([0, *sizes[:-1]], sizes, strict=True)]
        nxt = self.uploads.add(s, start, views)
        return json_response({"next": nxt})

    def finish_upload(self, req: Request, tenant: Tenant) -> Response:
        s = self.uploads.get(req.params["uid"], tenant.id)
        if req.content_length:
            raise HTTPError(400, "bad_request", "finish takes no body")
        manifest = self.uploads.finish(s)
        return Response(body=manifest, content_type="application/vnd.veil.manifest")

    def upload_status(self, req: Request, tenant: Tenant) -> Response:
        return json_response(self.uploads.status(self.uploads.get(req.params["uid"], tenant.id)))

    def abort_upload(self, req: Request, tenant: Tenant) -> Response:
        self.uploads.abort(self.uploads.get(req.params["uid"], tenant.id))
        return Response(status=204)

    def manifest(self, req: Request, tenant: Tenant) -> Response:
        vcap = _verify(req.params["verify"])
        try:
            loc = self.files.located(vcap)
        except NotFoundError as e:
            raise HTTPError(404, "not_found", "no node has this file") from e
        return Response(body=loc.manifest.to_bytes(), content_type="application/vnd.veil.manifest")

    def delete_file(self, req: Request, tenant: Tenant) -> Response:
        """The uploader's delete (caps.md, "Deletion keys"): the nodes check the key, not the gateway."""
        from veil.client.deletion import delete_file

        vcap = _verify(req.params["verify"])
        key = _hex(read_json(req), "key", 32)
        gone = delete_file(self.network(), vcap, key)  # NotAllowedError -> 403, NotFoundError -> 404
        self.files.forget(vcap)
        return json_response({"deleted": gone.shares, "nodes": len(gone.removed), "unreachable": len(gone.unreachable)})

    def cost(self, req: Request, tenant: Tenant) -> Response:
        """What downloading the file costs: the holders' highest advertised price over the bytes fetched."""
        vcap = _verify(req.params["verify"])
        try:
            loc = self.files.located(vcap)
        except NotFoundError as e:
            raise HTTPError(404, "not_found", "no node has this file") from e
        net = self.network()
        prices = [self.terms.price(net, node) for node in holder_nodes(loc)]
        wallet = self.config.wallet
        allowance = wallet.allowance_left(net) if wallet is not None else None
        return json_response(download_cost(loc.manifest, loc.share_count(), prices, allowance, wallet is not None))

    def segments(self, req: Request, tenant: Tenant) -> Response:
        vcap = _verify(req.params["verify"])
        start = req.int_param("start", 0)
        count = req.int_param("count") if "count" in req.query else None
        try:
            first, last, length, body = self.files.segment_range(vcap, start, count, visitor=client_of(req))
        except NotFoundError as e:
            raise HTTPError(404, "not_found", "no node has this file") from e
        except VeilError:
            self.files.forget(vcap)  # the holders may have changed: locate afresh next time
            raise
        return Response(body=body, content_length=length, content_type="application/octet-stream",
                        headers={"X-Veil-Segments": f"{first}-{last}"})

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, host: str, port: int) -> HTTPSServer:
        # The server's own answers (malformed requests, 414, 431, 503 ...) carry the same
        # security headers as the pages; handlers set their tenant's own, which win by name.
        defaults = {"Cache-Control": "no-store", **security_headers(None)}
        self.server = serve((host, port), self.router, None, default_headers=defaults, error_response=json_error,
                            observer=self.metrics.observer("gateway", access_observer(access_log)))
        self._reaper = threading.Thread(target=self._reap_loop, name="gateway-reaper", daemon=True)
        self._stop = threading.Event()
        self._reaper.start()
        return self.server

    def start_tls(self, host: str, port: int) -> HTTPSServer:
        """HTTPS for browsers, each tenant's hosts with its own certificate (SNI; tenants.toml cert/key)."""
        defaults = {"Cache-Control": "no-store", **security_headers(None)}
        self.tls_server = serve((host, port), self.router, self.config.tenants.tls_context(),
                                default_headers=defaults, error_response=json_error,
                                observer=self.metrics.observer("gateway", access_observer(access_log)))  # fmt: skip
        return self.tls_server

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy while the network file loads (the gateway cannot serve a file without it)."""
        problems = []
        try:
            self.network()
        except VeilError as e:
            problems.append(f"network: {e}")
        return not problems, {"status": "unhealthy" if problems else "ok", "problems": problems}

    def status(self) -> dict[str, Any]:
        w = self.config.wallet
        return {"url": self.url if self.server is not None else None, "uploads": self.uploads.count(),
                "spent": w.spent if w is not None else 0}

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port!s}"

    def _reap_loop(self) -> None:
        while not self._stop.wait(10):
            self.uploads.reap()

    def stop(self) -> None:
        if self.tls_server is not None:
            self.tls_server.shutdown()
            self.tls_server.server_close()
            self.tls_server = None
        if self.server is not None:
            self._stop.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.uploads.close()
        self.slots.close()
        self.wallet_api.close()
        if self.config.wallet is not None:
            self.config.wallet.close()


class GatewayRouter(Router):
    """A router whose misses are answered by the gateway (JSON or page, with its headers)."""

    def __init__(self, gw: Gateway) -> None:
        super().__init__()
        self._gw = gw

    def match(self, method: str, path: str) -> tuple[Callable[[Request], Response], dict[str, str]]:
        try:
            return super().match(method, path)
        except HTTPError as e:
            err = e

        def miss(req: Request, tenant: Tenant) -> Response:
            if err.status == 404 and method == "GET" and not path.startswith("/api/"):
                return self._gw.render(tenant, "notfound", 404)
            resp = json_error(err.status, err.code, err.message)
            resp.headers.update(err.headers)
            return resp

        return self._gw._wrap(miss), {}


def _batch_buffer(n: int) -> memoryview:
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < n:
        buf = _local.buf = bytearray(max(n, MAX_BATCH_BYTES))
    return memoryview(buf)[:n]
