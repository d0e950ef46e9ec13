"""A bare transport endpoint for measuring the loopback TLS ceiling of Veil's transport:
`python -m veil.bench.tlsecho DIR` serves PUT /sink and GET /source?size=N over the same
pinned TLS 1.3 server the nodes use, and writes its port and node id to DIR/echo.json."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from veil.crypto.sign import SigningKey, node_id
from veil.net.server import Request, Response, Router, cbor_response, serve
from veil.net.tls import server_context

CHUNK = 1 << 20
_payload = memoryview(bytes(CHUNK))


def _sink(req: Request) -> Response:
    buf = memoryview(bytearray(CHUNK))
    left = req.content_length
    while left:
        n = min(CHUNK, left)
        req.readinto_exact(buf[:n])
        left -= n
    return cbor_response({})


def _source(req: Request) -> Response:
    size = int(req.query.get("size", "0"))

    def body() -> Iterator[memoryview]:
        left = size
        while left:
            n = min(CHUNK, left)
            yield _payload[:n]
            left -= n

    return Response(body=body(), content_length=size)


def main() -> None:
    out = Path(sys.argv[1])
    key = SigningKey.generate()
    router = Router()
    router.add("PUT", "/sink", _sink)
    router.add("GET", "/source", _source)
    srv = serve(("127.0.0.1", 0), router, server_context(key, out / "tls"))
    tmp = out / "echo.json.tmp"
    tmp.write_text(json.dumps({"port": srv.server_address[1], "node_id": node_id(key.public_key).hex()}))
    tmp.rename(out / "echo.json")
    threading.Event().wait()


if __name__ == "__main__":
    main()
