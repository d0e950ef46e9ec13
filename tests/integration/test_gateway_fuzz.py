"""Fuzz the gateway's API from its own OpenAPI document (served at /api/openapi.json), on a
real devnet: malformed paths, queries, headers and bodies must get a 4xx, never a 5xx, and
the gateway must keep answering afterwards.

A hand-rolled, schema-aware generator (types from the schema, then broken on purpose), beside
schemathesis in test_gateway_schemathesis.py: this one adds the hostile inputs schemathesis does
not make (path traversal, huge and nested bodies, garbled caps).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

pytestmark = pytest.mark.integration

STRINGS = ["", "a", "0", "-1", "%00", "..", "../../etc/passwd", "%2e%2e%2f", "ä", "\u202e", "x" * 5000,
           "veil:v1:abc", "null", "[]", "{}", "1e309", "0x10", " ", "%ff%fe"]
VALUES: list[Any] = [None, True, False, 0, -1, 1, 2**53, 2**64, -(2**63), 1.5, "", "zz", "00" * 16, [], {},
                     [1, 2], {"a": 1}, "A" * 100_000]


def _verify_like(rng: random.Random, good: str) -> str:
    s = list(good)
    for _ in range(rng.randint(0, 3)):
        s[rng.randrange(len(s))] = rng.choice("abcdefghijklmnopqrstuvwxyz234567018!~")
    return "".join(s)[: rng.randint(0, len(s) + 5)] or "a"


def _json_body(rng: random.Random, schema: dict[str, Any]) -> bytes:
    props = schema.get("properties", {})
    value: dict[str, Any] = {}
    for name, p in props.items():
        if rng.random() < 0.8:
            if p.get("type") == "integer" and rng.random() < 0.5:
                value[name] = rng.choice([p.get("minimum", 0), p.get("maximum", 2**53), rng.randint(-5, 2**40)])
            elif name == "meta" and rng.random() < 0.5:
                value[name] = base64.b64encode(rng.randbytes(rng.choice([0, 10, 144, 200, 20000]))).decode()
            elif name == "si" and rng.random() < 0.5:
                value[name] = rng.randbytes(16).hex()
            else:
                value[name] = rng.choice(VALUES)
    if rng.random() < 0.2:
        value[rng.choice(STRINGS) or "k"] = rng.choice(VALUES)
    kind = rng.random()
    if kind < 0.7:
        return json.dumps(value).encode()
    if kind < 0.8:
        return json.dumps(rng.choice(VALUES)).encode()
    if kind < 0.9:
        return b"[" * 5000
    return rng.randbytes(rng.randint(0, 300))


class Client:
    def __init__(self, base: str) -> None:
        u = urlsplit(base)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()


def test_no_5xx_from_malformed_requests(devnet: Any) -> None:
    base = devnet.net.gateway
    cl = Client(base)
    c = http.client.HTTPConnection(cl.host, cl.port, timeout=10)
    c.request("GET", "/api/openapi.json")
    doc = json.loads(c.getresponse().read())
    c.close()
    from veil.format.caps import ReadCap

    good_verify = ReadCap(bytes(32), bytes(32)).verify_cap().payload()
    rng = random.Random(1234)
    failures: list[str] = []
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for _ in range(60):
                p = path
                for param in op.get("parameters", []):
                    if param["in"] == "path":
                        v = _verify_like(rng, good_verify) if param["name"] == "verify" else rng.choice(STRINGS) or "x"
                        p = p.replace("{" + param["name"] + "}", quote(v, safe=""))
                query = []
                for param in op.get("parameters", []):
                    if param["in"] == "query" and rng.random() < 0.8:
                        query.append(f"{param['name']}={quote(str(rng.choice([*STRINGS, 0, 1, 2**70])), safe='')}")
                if query:
                    p += "?" + "&".join(query)
                body: bytes | None = None
                headers = {"Content-Type": rng.choice(["application/json", "application/octet-stream", "text/plain",
                                                       "application/json; charset=utf-8", ""])}
                rb = op.get("requestBody")
                if rb is not None or rng.random() < 0.3:
                    content = (rb or {}).get("content", {})
                    if "application/json" in content:
                        schema = content["application/json"]["schema"]
                        if "$ref" in schema:  # a named schema, or one written inline
                            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                        body = _json_body(rng, schema)
                    else:
                        body = rng.randbytes(rng.choice([0, 1, 17, 1 << 16]))
                status = cl.send(method.upper(), p, body, headers)
                if status >= 500:
                    failures.append(f"{method.upper()} {p[:120]} -> {status}")
    # Raw malformed HTTP the client library would not send.
    for raw in (b"PUT /api/uploads/x/segments?start=0 HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
                b"POST /api/uploads HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{",
                b"GET /api/files/%zz/manifest HTTP/1.1\r\nHost: a\r\n\r\n",
                b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"):
        with socket.create_connection((cl.host, cl.port), timeout=10) as s:
            s.sendall(raw)
            reply = s.recv(100)
            if reply.startswith(b"HTTP/1.") and reply[9:10] == b"5":
                failures.append(f"raw {raw[:40]!r} -> {reply[:20]!r}")
    assert not failures, "\n".join(failures[:20])
    assert cl.send("GET", "/api/tenant", None, {}) == 200  # still serving
