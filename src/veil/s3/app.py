"""The S3 endpoint's HTTP application: addressing, authentication, dispatch, S3 error XML.

Served by ``veil.net.server`` (plain HTTP, the same strict parser and bounded worker pool as
every Veil server). Every request gets a request id; its signature is verified (``sigv4``)
from the head alone, before any body byte is read; then the bucket and key are taken from the
path (path style) or the Host header (virtual-host style, ``BUCKET.<domain>``). Any failure is
S3's ``<Error>`` XML with its status: a failure of the Veil network below is 503 SlowDown
(too few nodes) or 500 InternalError, never a traceback.

Imports from: veil.errors, veil.client, veil.net, veil.s3.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from veil.client.network import Network
from veil.errors import NotFoundError, UnavailableError, UsageError, VeilError
from veil.net.server import Handler, HTTPError, Request, Response, Router
from veil.s3 import buckets, objects, xmlio
from veil.s3.context import Ctx, xml
from veil.s3.errors import S3Error
from veil.s3.keys import S3Key
from veil.s3.multipart import Multipart
from veil.s3.sigv4 import SignedRequest, Verified, verify
from veil.s3.store import Store

log = logging.getLogger("veil.s3")
access_log = logging.getLogger("veil.s3.access")

UNSUPPORTED = ("policy", "cors", "lifecycle", "tagging", "website", "logging", "notification", "replication",
               "encryption", "object-lock", "retention", "legal-hold", "torrent", "restore", "select", "accelerate",
               "requestPayment", "analytics", "metrics", "inventory", "intelligent-tiering", "ownershipControls",
               "publicAccessBlock", "attributes")  # fmt: skip


@dataclass
class S3Config:
    keys: list[S3Key]
    domains: list[str] = field(default_factory=lambda: ["localhost"])
    k: int = 3
    n: int = 10
    region: str = "us-east-1"


def error_response(status: int, code: str, message: str, rid: str | None = None, resource: str | None = None) -> Response:
    rid = rid or secrets.token_hex(8).upper()
    body = xmlio.error_body(code, message, resource, rid)
    return Response(status=status, body=body, content_type="application/xml",
                    headers={"x-amz-request-id": rid, "x-amz-id-2": rid})  # fmt: skip


def server_error(status: int, code: str, message: str) -> Response:
    """The errors the HTTP layer answers itself (431, 501, 503 ...), in S3's form."""
    s3code = {400: "InvalidRequest", 408: "RequestTimeout", 411: "MissingContentLength", 413: "EntityTooLarge",
              414: "InvalidURI", 431: "RequestHeaderSectionTooLarge", 501: "NotImplemented",
              503: "SlowDown", 505: "HttpVersionNotSupported"}.get(status, code)  # fmt: skip
    return error_response(status, s3code, message)


class AnyPath(Router):
    """Every method and path goes to the one S3 handler (S3 routes by query and headers too)."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        return self._handler, {}


class S3App:
    def __init__(self, config: S3Config, network: Callable[[], Network], store: Store,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.config = config
        self.network = network
        self.store = store
        self.clock = clock
        self.multipart = Multipart()
        self._by_access = {k.access_key: k for k in config.keys}
        self.router = AnyPath(self.handle)

    def _secret(self, access_key: str) -> str | None:
        k = self._by_access.get(access_key)
        return k.secret if k is not None else None

    def _address(self, req: Request) -> tuple[str | None, str | None]:
        host = (req.headers.get("Host") or "").lower()
        if host.startswith("["):
            host = host.partition("]")[0] + "]"
        else:
            host = host.partition(":")[0]
        path = req.path
        for d in self.config.domains:
            if host.endswith("." + d) and len(host) > len(d) + 1:
                bucket = host[: -len(d) - 1]
                key = unquote(path[1:]) if len(path) > 1 else None
                return bucket, key or None
        rest = path[1:]
        if not rest:
            return None, None
        bucket, slash, key = rest.partition("/")
        return unquote(bucket), (unquote(key) if slash and key else None)

    def handle(self, req: Request) -> Response:
        rid = secrets.token_hex(8).upper()
        t0 = time.monotonic()
        resource = req.path
        try:
            bucket, key = self._address(req)
            resource = "/" + "/".join(x for x in (bucket, key) if x)
            auth, s3key = self._authenticate(req)
            c = Ctx(req, rid, s3key.root_cap(), auth, bucket, key, self.store, self.network,
                    self.config.k, self.config.n)  # fmt: skip
            resp = self._dispatch(c)
        except S3Error as e:
            resp = error_response(e.status, e.code, e.message, rid, e.resource or resource)
        except HTTPError as e:  # the body broke off or stalled (the connection closes)
            resp = error_response(e.status, "IncompleteBody" if e.status == 400 else "RequestTimeout", e.message, rid)
        except UnavailableError as e:
            log.warning("request %s: network unavailable: %s", rid, e)
            resp = error_response(503, "SlowDown", "the storage network is unavailable right now; retry", rid, resource)
            resp.headers["Retry-After"] = "1"
        except NotFoundError as e:
            log.warning("request %s: stored data not found: %s", rid, e)
            resp = error_response(503, "SlowDown", "stored data could not be found on the network right now; retry",
                                  rid, resource)  # fmt: skip
        except UsageError as e:
            resp = error_response(400, "InvalidArgument", str(e)[:300], rid, resource)
        except VeilError as e:
            log.warning("request %s failed: %s", rid, e)
            resp = error_response(500, "InternalError", "we encountered an internal error; please try again", rid, resource)
        except Exception:
            log.exception("request %s: handler failed on %s %s", rid, req.method, req.path[:100])
            resp = error_response(500, "InternalError", "we encountered an internal error; please try again", rid, resource)
        resp.headers.setdefault("x-amz-request-id", rid)
        resp.headers.setdefault("x-amz-id-2", rid)
        if req.method == "HEAD" and resp.status >= 400:
            resp.body = iter(())
            resp.content_length = 0
        access_log.info("%s %s %s %d %.0fms %s", req.peer[0], req.method, req.path[:200], resp.status,
                        (time.monotonic() - t0) * 1000, rid)  # fmt: skip
        return resp

    def _authenticate(self, req: Request) -> tuple[Verified, S3Key]:
        raw_query = [(k, v) for k, v in req.query.items()]
        if "Host" not in req.headers:
            raise S3Error("InvalidRequest", "a Host header is required")
        sreq = SignedRequest(req.method, req.path, raw_query, req.headers)
        auth = verify(sreq, self._secret, dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        return auth, self._by_access[auth.access_key]

    def _dispatch(self, c: Ctx) -> Response:
        m, q = c.req.method, c.query
        if "acl" in q and c.bucket is not None:
            if m == "GET":
                return buckets.acl(c)
            raise S3Error("NotImplemented", "ACLs are not implemented: every bucket and object is private")
        for sub in UNSUPPORTED:
            if sub in q:
                raise S3Error("NotImplemented", f"the ?{sub} subresource is not implemented by this endpoint")
        if c.bucket is None:
            if m == "GET":
                return buckets.list_buckets(c)
            raise S3Error("MethodNotAllowed", "the specified method is not allowed against this resource")
        if c.key is None:
            return self._bucket(c, m, q)
        return self._object(c, m, q)

    def _bucket(self, c: Ctx, m: str, q: dict[str, str]) -> Response:
        if m == "PUT":
            if "versioning" in q:
                raise S3Error("NotImplemented", "versioning is not implemented by this endpoint")
            return buckets.create_bucket(c)
        if m == "DELETE":
            return buckets.delete_bucket(c)
        if m == "HEAD":
            return buckets.head_bucket(c)
        if m == "GET":
            if "uploads" in q:
                return self.multipart.list_uploads(c)
            if "versions" in q:
                return buckets.list_versions(c)
            if "location" in q:
                return buckets.location(c)
            if "versioning" in q:
                c.store.bucket_mtime(c.root, c.bucket or "")
                return xml("VersioningConfiguration", [])
            return buckets.list_objects(c)
        if m == "POST" and "delete" in q:
            return buckets.delete_objects(c)
        raise S3Error("MethodNotAllowed", "the specified method is not allowed against this resource")

    def _object(self, c: Ctx, m: str, q: dict[str, str]) -> Response:
        mp = self.multipart
        if m == "PUT":
            if "uploadId" in q:
                return mp.upload_part_copy(c) if c.header("x-amz-copy-source") else mp.upload_part(c)
            if c.header("x-amz-copy-source"):
                return objects.copy_object(c)
            return objects.put_object(c)
        if m == "GET":
            return mp.list_parts(c) if "uploadId" in q else objects.get_object(c)
        if m == "HEAD":
            return objects.get_object(c, head_only=True)
        if m == "DELETE":
            return mp.abort(c) if "uploadId" in q else objects.delete_object(c)
        if m == "POST":
            if "uploads" in q:
                return mp.create(c)
            if "uploadId" in q:
                return mp.complete(c)
        raise S3Error("MethodNotAllowed", "the specified method is not allowed against this resource")
