"""The HTTP/1.1-over-TLS-1.3 server of every Veil node, the gateway and (later) the S3 endpoint.

Blocking sockets in a fixed pool of worker threads, not an event loop, for the body path:
plain ``ssl`` sockets move 1.0-1.2 GB/s per connection where aiohttp managed 0.3-0.4 GB/s
(docs/specs/transport.md). Everything else a connection does before it has a complete request
head (accept, TLS handshake, waiting idle between keep-alive requests, reading the head) happens
in one selector thread (``reactor.py``), so idle or slow connections never hold a worker.
Bounds (``wire.Limits``): workers, a queue of complete heads (503 + Retry-After when full),
connections in total and per IP, deadlines for handshake, head, body and idle time. Heads are
parsed strictly by ``http1.py``; every response, the server's own errors included, goes through
``wire.render_head`` with the server's default headers.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import unquote

from veil.net.exchange import (
    DEFAULT_MAX_BODY,
    ErrorResponse,
    Handler,
    Observer,
    Request,
    Served,
    Site,
    error_status,
    serve_one,
)
from veil.net.fairqueue import FairQueue
from veil.net.http1 import MAX_HEAD
from veil.net.reactor import Job, Reactor
from veil.net.wire import HTTPError, Limits, Response, cbor_error, cbor_response, render_small

__all__ = ["DEFAULT_MAX_BODY", "MAX_HEADER_BYTES", "HTTPError", "HTTPSServer", "Handler", "Limits", "Observer",
           "Request", "Response", "Router", "Served", "cbor_response", "error_status", "serve"]

log = logging.getLogger("veil.net")

MAX_HEADER_BYTES = MAX_HEAD


class Router:
    """Maps (method, path pattern) to handlers; patterns look like ``/v1/shares/{si}/{shnum}``."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"

        def routed(req: Request) -> Response:
            req.route = pattern  # metrics and logs name the route, never the path (unbounded, may carry ids)
            return handler(req)

        self._routes.append((method, re.compile(regex), routed))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed: list[str] = []
        for m, rx, h in self._routes:
            mo = rx.match(path)
            if mo:
                if m == method:
                    return h, {k: unquote(v) for k, v in mo.groupdict().items()}
                allowed.append(m)
        if allowed:
            raise HTTPError(405, "method_not_allowed", f"{method} not allowed on {path}",
                            {"Allow": ", ".join(sorted(set(allowed)))})
        raise HTTPError(404, "no_route", f"no such endpoint: {path}")


class HTTPSServer:
    """A listening server: ``serve_forever()`` runs the selector loop; ``shutdown()`` stops it.

    ``ctx`` None serves plain HTTP (the gateway, behind its TLS-terminating proxy).
    ``default_headers`` go on every response unless the handler set the same header itself;
    ``error_response`` makes the body of the errors the server answers itself (CBOR by default);
    ``observer`` is called once per answered request, after the answer is written (metrics, access logs),
    and once per error the server answers before any handler ran (``Served.request`` None).
    """

    def __init__(self, addr: tuple[str, int], router: Router, ctx: ssl.SSLContext | None,
                 idle_timeout: float | None = None, *, limits: Limits | None = None,
                 default_headers: Mapping[str, str] | None = None,
                 error_response: ErrorResponse | None = None, observer: Observer | None = None) -> None:
        lim = limits or Limits()
        if idle_timeout is not None:
            lim = dataclasses.replace(lim, idle_timeout=idle_timeout)
        self.limits = lim
        self.router = router
        self.ctx = ctx
        self.site = Site(router, lim, dict(default_headers or {}), error_response or cbor_error, observer)
        self.socket = socket.create_server(addr, backlog=lim.queue + 64, reuse_port=False)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self._jobs: FairQueue[Job] = FairQueue(lim.queue, lim.workers_per_ip, max(1, lim.queue // 4),
                                               key=lambda job: job[0].ip)
        self.reactor = Reactor(self.socket, ctx, lim, self._jobs, self._render_error)
        self._workers = [threading.Thread(target=self._work, name=f"http-worker-{i}", daemon=True)
                         for i in range(lim.workers)]
        for t in self._workers:
            t.start()
        self._closed = False

    def _render_error(self, status: int, code: str, message: str, headers: dict[str, str]) -> bytes:
        resp = self.site.error_response(status, code, message)
        resp.headers.update(headers)
        raw = render_small(resp, self.site.default_headers, close=True)
        if self.site.observer is not None:
            try:
                self.site.observer(Served("", "", status, 0, len(raw), 0.0, None))
            except Exception:
                log.exception("request observer failed")
        return raw

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            conn, head, leftover = job
            try:
                keep, linger = serve_one(self.site, conn, head, leftover)
            except Exception:  # serve_one answers handler errors itself; this is a bug in the server
                log.exception("serving %s %s failed", head.method, head.target[:80])
                keep, linger = False, False
            finally:
                self._jobs.done(job)
            self.reactor.give_back(conn, keep, linger)

    def serve_forever(self) -> None:
        self.reactor.run()

    def shutdown(self) -> None:
        """Stop the selector loop (workers finish the request they are on)."""
        self.reactor.stop()

    def server_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.reactor.stop()  # the loop must not select on a closed listener
        self.socket.close()
        for _ in self._workers:
            try:
                self._jobs.put_nowait(None)
            except queue.Full:
                break

    def stats(self) -> dict[str, int]:
        """Connections by state and the queue length, for status pages and tests."""
        return {**self.reactor.counts(), "queued": self._jobs.qsize(), "workers": len(self._workers)}


def serve(addr: tuple[str, int], router: Router, ctx: ssl.SSLContext | None, *, limits: Limits | None = None,
          default_headers: Mapping[str, str] | None = None,
          error_response: ErrorResponse | None = None, observer: Observer | None = None) -> HTTPSServer:
    """Bind and start serving in a background thread; returns the server (``.shutdown()`` to stop)."""
    srv = HTTPSServer(addr, router, ctx, limits=limits, default_headers=default_headers,
                      error_response=error_response, observer=observer)
    t = threading.Thread(target=srv.serve_forever, name=f"https-{srv.server_address[1]}", daemon=True)
    t.start()
    return srv
