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

import base64
import binascii
import html
import json
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
from veil.errors import CapError, NotFoundError, UsageError, VeilError
from veil.format.caps import SI_SIZE, VerifyCap, parse_verify_cap
from veil.gateway import openapi
from veil.gateway.access import REQUEST_ID_HEADER, access_observer, begin, client_of
from veil.gateway.files import FileReader
from veil.gateway.folders import SlotGateway
from veil.gateway.pay import GatewayWallet, TermsCache, download_cost, holder_nodes
from veil.gateway.proxies import TrustedProxies
from veil.gateway.security import security_headers
from veil.gateway.tenants import Tenant, TenantSet
from veil.gateway.uploads import (
    MAX_BATCH_BYTES,
    UploadBusyError,
    UploadGoneError,
    UploadManager,
    UploadStateError,
)
from veil.ledger.params import Params
from veil.net.server import HTTPError, HTTPSServer, Request, Response, Router, error_status, serve
from veil.node.metrics import Metrics
from veil.node.metrics_http import health_response
from veil.node.metrics_roles import role_metrics

log = logging.getLogger("veil.gateway")
access_log = logging.getLogger("veil.gateway.access")

MAX_JSON = 64 * 1024
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8", ".png": "image/png",
                ".json": "application/json"}
STATIC_FILES = ("app.js", "common.js", "upload.js", "folder-app.js", "veil-format.js", "veil-folder.js",
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
        self.static = {name: _static_bytes(name) for name in STATIC_FILES}
        self.sw = _static_bytes("sw.js")
        self.template = _static_bytes("app.html").decode()
        params = Params("veil")
        self.allowance = {"bytes": params.allowance_bytes, "period_seconds": params.epoch_seconds,
                          "source": "network parameter (per-visitor usage is not tracked by this gateway)"}
        self.router = GatewayRouter(self)
        self._routes()
        self.server: HTTPSServer | None = None
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
        r.add("DELETE", "/api/uploads/{uid}", self._wrap(self.abort_upload))
        r.add("GET", "/api/files/{verify}/manifest", self._wrap(self.manifest))
        r.add("GET", "/api/files/{verify}/segments", self._wrap(self.segments))
        r.add("GET", "/api/files/{verify}/cost", self._wrap(self.cost))
        r.add("GET", "/api/mutable/{slot}", self._wrap(lambda req, _t: self.slots.get_handler(req)))
        r.add("PUT", "/api/mutable/{slot}", self._wrap(lambda req, _t: self.slots.put_handler(req)))

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
            except HTTPError as e:
                resp = json_error(e.status, e.code, e.message)
                resp.headers.update(e.headers)
            except UploadBusyError as e:
                resp = json_error(503, "busy", str(e))
            except UploadGoneError as e:
                resp = json_error(404, "no_upload", str(e))
            except UploadStateError as e:
                resp = json_error(409, "upload_state", str(e))
            except VeilError as e:
                status, code = error_status(e)
                resp = json_error(status, code, str(e))
            except Exception:
                log.exception("gateway handler failed on %s %s (request %s)", req.method, req.path, rid)
                resp = json_error(500, "internal", "internal error")
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
            self.template.replace("{{name}}", esc(tenant.name))
            .replace("{{tagline}}", esc(tenant.tagline))
            .replace("{{mode}}", esc(mode))
            .replace("{{tenant}}", esc(tenant.id))
            .replace("{{footer}}", footer)
        )
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
        return json_response({**tenant.public(), "allowance": self.allowance,
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
        if extra := set(m) - {"si", "size", "segsize", "k", "n", "meta"}:
            raise HTTPError(400, "bad_request", f"unknown fields {sorted(extra)}")
        if size > tenant.max_file_size:
            raise HTTPError(413, "too_large", f"{tenant.name} accepts files of at most {tenant.max_file_size} bytes")
        s = self.uploads.begin(tenant.id, si, size, segsize, k, n, self.config.happy, meta)
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
        return json_response(download_cost(loc.manifest, loc.share_count(), prices, allowance))

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
        if self.server is not None:
            self._stop.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.uploads.close()
        self.slots.close()
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


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(value).encode(), content_type="application/json")


def json_error(status: int, code: str, message: str) -> Response:
    return json_response({"error": code, "message": message}, status)


def read_json(req: Request) -> dict[str, Any]:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "unsupported_media_type", "send application/json")
    raw = req.read_body(MAX_JSON)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise HTTPError(400, "bad_request", "body is not valid JSON") from e
    if not isinstance(value, dict):
        raise HTTPError(400, "bad_request", "body must be a JSON object")
    return value


def _int(m: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise HTTPError(400, "bad_request", f"field {key!r} must be an integer in [{lo}, {hi}]")
    return v


def _hex(m: dict[str, Any], key: str, size: int) -> bytes:
    v = m.get(key)
    if not isinstance(v, str) or len(v) != 2 * size:
        raise HTTPError(400, "bad_request", f"field {key!r} must be {size} bytes in hex")
    try:
        return bytes.fromhex(v)
    except ValueError as e:
        raise HTTPError(400, "bad_request", f"field {key!r} must be {size} bytes in hex") from e


def _b64(m: dict[str, Any], key: str) -> bytes:
    v = m.get(key)
    if not isinstance(v, str) or len(v) > 32 * 1024:
        raise HTTPError(400, "bad_request", f"field {key!r} must be base64")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HTTPError(400, "bad_request", f"field {key!r} must be base64") from e


def _verify(text: str) -> VerifyCap:
    if len(text) > 200:
        raise HTTPError(400, "bad_request", "file id is too long")
    try:
        return parse_verify_cap("veil:v1:" + text)
    except (CapError, UsageError) as e:
        raise HTTPError(400, "bad_link", str(e)) from e


def _batch_buffer(n: int) -> memoryview:
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None or len(buf) < n:
        buf = _local.buf = bytearray(max(n, MAX_BATCH_BYTES))
    return memoryview(buf)[:n]
