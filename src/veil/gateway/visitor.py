"""What a visitor is told when a request fails, and what the gateway's log keeps.

Visitors get a sentence written for them ("the network is busy, try again in a minute") and a
request id; they never see a node address, a Python exception name or an internal message. The
log gets the request id with the whole story (exception type and text), so an operator handed
the id by a visitor finds the line. Messages the gateway itself writes for callers (``HTTPError``
of a handler, a refused budget, a size limit) pass through as they are.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field

from veil.client.payer import BudgetError, PriceCeilingError
from veil.errors import (
    CapError,
    IntegrityError,
    NotAllowedError,
    NotFoundError,
    PaymentRequiredError,
    StorageFullError,
    UnavailableError,
    UsageError,
    VeilError,
)
from veil.gateway.pay import NO_WALLET
from veil.gateway.uploads import UploadBusyError, UploadGoneError, UploadStateError
from veil.net.server import HTTPError, Request, Response

log = logging.getLogger("veil.gateway")

# No tenant serves this host, so no brand, stylesheet or script of one either (CSP allows no inline style).
UNKNOWN_HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Site not found</title></head>
<body><main><h1>Site not found</h1>
<p>This address is not served here. Check the spelling of the address, or ask whoever gave you the link.</p>
<p><small>Reference: {{rid}}</small></p></main></body></html>
"""
BUSY = "the network is busy; try again in a minute"
RETRY_AFTER = "60"


def unknown_host_page(req: Request, a: Answer, rid: str) -> Response | None:
    """For a browser asking a page of a host no tenant serves, an HTML page (API callers: None, JSON)."""
    if req.method not in ("GET", "HEAD") or req.path.startswith("/api/") or "text/html" not in (req.headers.get("Accept") or ""):
        return None
    page = UNKNOWN_HOST_PAGE.replace("{{rid}}", html.escape(rid))
    return Response(status=a.status, body=page.encode(), content_type="text/html; charset=utf-8")


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def answer_for(e: BaseException) -> Answer:
    """The visitor-facing answer to an exception raised while handling a request."""
    if isinstance(e, HTTPError):
        return Answer(e.status, e.code, e.message, dict(e.headers))
    if isinstance(e, UploadBusyError):
        return Answer(503, "busy", "this gateway has many uploads in progress; try again in a minute",
                      {"Retry-After": RETRY_AFTER})
    if isinstance(e, UploadGoneError):
        return Answer(404, "no_upload", "this upload is over: it finished, was cancelled, or waited too long; "
                                        "please upload the file again")
    if isinstance(e, UploadStateError):
        return Answer(409, "upload_state", "this upload cannot take that step now; the page will pick up where "
                                           "it stopped, or please upload the file again")
    if isinstance(e, PaymentRequiredError):
        if isinstance(e, BudgetError | PriceCeilingError) or str(e) == NO_WALLET:
            return Answer(402, "payment_required", str(e))  # written by the gateway, for visitors
        return Answer(402, "payment_required", "the nodes holding this file did not accept this gateway's "
                                               "payment; try again later")
    if isinstance(e, NotAllowedError):
        return Answer(403, "not_allowed", "only the person who uploaded this file can delete it")
    if isinstance(e, NotFoundError):
        return Answer(404, "not_found", "no node on the network has this file")
    if isinstance(e, StorageFullError):
        return Answer(507, "storage_full", "the network has no room for this file right now; try again later")
    if isinstance(e, UnavailableError):
        return Answer(503, "unavailable", BUSY, {"Retry-After": RETRY_AFTER})
    if isinstance(e, IntegrityError):
        return Answer(502, "bad_data", "the network sent damaged data for this file; try again in a minute")
    if isinstance(e, CapError):
        return Answer(400, "bad_link", "this link is garbled")
    if isinstance(e, UsageError):
        return Answer(400, "bad_request", "the request was not understood; reload the page and try again")
    if isinstance(e, VeilError):
        return Answer(502, "network_error", "the network did not answer properly; try again in a minute",
                      {"Retry-After": RETRY_AFTER})
    return Answer(500, "internal", "something went wrong on this gateway; try again later")


def log_failure(rid: str, method: str, path: str, e: BaseException, a: Answer) -> None:
    """The operator's side: the request id with what really happened."""
    if isinstance(e, HTTPError) and a.status < 500:
        log.info("request %s: %s %s -> %d %s: %s", rid, method, path, a.status, a.code, e.message)
    elif isinstance(e, VeilError | HTTPError):
        log.warning("request %s: %s %s -> %d %s: %s: %s", rid, method, path, a.status, a.code,
                    type(e).__name__, e)
    else:
        log.error("request %s: %s %s -> %d: unexpected %s", rid, method, path, a.status, type(e).__name__,
                  exc_info=e)
