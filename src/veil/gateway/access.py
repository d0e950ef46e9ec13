"""Per gateway request: its id, the visitor's address, and the access-log line written once it is answered.

``begin`` runs first in every handler: it names the visitor (gateway/proxies.py: the peer, or
what a trusted proxy says), and gives the request an id, which the answer carries in
``X-Request-Id`` and the page can show, so an operator finds a visitor's error in the log. A
trusted proxy's own ``X-Request-Id`` (nginx's ``$request_id``) is kept when it is plain text.

The access log (logger ``veil.gateway.access``, one logfmt line per request, after the last byte
is written) has the request id, visitor, peer, tenant, method, path, route, status, body bytes
in and bytes out, and duration. Keys never reach the gateway (they live in URL fragments);
paths are sanitised and bounded (format/remote_text.py), and a path holding a bearer id (an
upload session's) is logged as its route. Imports from: veil.net, veil.format.
"""

from __future__ import annotations

import logging
import re
import secrets

from veil.format.remote_text import clean
from veil.gateway.proxies import TrustedProxies, _ip
from veil.net.server import Observer, Request, Served

REQUEST_ID_HEADER = "X-Request-Id"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LOGGED_PATH = 200
# Path parameters that are bearer secrets (an upload session's id lets its holder write to it; a
# download token): for their routes the log shows the route, not the path.
SECRET_PARAMS = ("{uid}", "{token}")


def begin(req: Request, proxies: TrustedProxies) -> str:
    """Name the request's visitor (``req.extra["client"]``) and id (``req.extra["request_id"]``); returns the id."""
    rid = req.extra.get("request_id")
    if isinstance(rid, str):
        return rid
    peer = str(req.peer[0])
    req.extra["client"] = proxies.client(peer, req.headers.get_all("Forwarded"), req.headers.get_all("X-Forwarded-For"))
    given = req.headers.get(REQUEST_ID_HEADER) or ""
    rid = given if proxies.trusts(_ip(peer)) and _PLAIN_ID.fullmatch(given) else secrets.token_hex(8)
    req.extra["request_id"] = rid
    return rid


def client_of(req: Request) -> str:
    """The visitor's address (after ``begin``; the peer before)."""
    c = req.extra.get("client")
    return c if isinstance(c, str) else str(req.peer[0])


def logged_path(req: Request) -> str:
    if any(p in req.route for p in SECRET_PARAMS):
        return req.route
    return clean(req.path, MAX_LOGGED_PATH).replace(" ", "%20")


def access_observer(logger: logging.Logger) -> Observer:
    def observe(s: Served) -> None:
        req = s.request
        # The server's own refusals (503 when full, 431 ...) come from its selector thread, which
        # must not write a line per refusal under a flood: they are counted in the metrics only.
        if req is None or not logger.isEnabledFor(logging.INFO):
            return
        extra = req.extra
        logger.info(
            "rid=%s client=%s peer=%s tenant=%s method=%s path=%s route=%s status=%d in=%d out=%d ms=%.1f",
            extra.get("request_id", "-"), extra.get("client", req.peer[0]), req.peer[0],
            clean(extra.get("tenant", "-"), 64), s.method or "-", logged_path(req), s.route or "-",
            s.status, s.bytes_in, s.bytes_out, s.seconds * 1000,
        )

    return observe
