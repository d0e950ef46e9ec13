"""The gateway's HTTP API in process, on a network with no storage nodes: routing, headers,
bounds and error bodies. (Uploads and downloads against real nodes: tests/browser.)"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from veil.client.network import Network
from veil.format.caps import ReadCap
from veil.gateway.app import Gateway, GatewayConfig
from veil.gateway.tenants import parse_tenants
from veil.gateway.uploads import MAX_BATCH_BYTES


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    from pathlib import Path

    tenants = parse_tenants({
        "unknown_host": "404",
        "tenant": {"small": {"hosts": ["127.0.0.1"], "name": "Small <b>&</b>", "max_file_size": "1MB",
                             "embed_origins": ["https://shop.example"]}},
    }, Path("."))
    g = Gateway(GatewayConfig(tenants=tenants, network=Network(nodes=[])))
    g.start("127.0.0.1", 0)
    try:
        yield g
    finally:
        g.stop()


def request(gw: Gateway, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    assert gw.server is not None
    c = http.client.HTTPConnection("127.0.0.1", int(gw.server.server_address[1]), timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def begin(gw: Gateway, **fields: Any) -> tuple[int, dict[str, Any]]:
    value = {"si": "00" * 16, "size": 1000, "segsize": 1 << 20, "meta": base64.b64encode(bytes(160)).decode()}
    value.update(fields)
    status, _, body = request(gw, "POST", "/api/uploads", json.dumps(value).encode(),
                              {"Content-Type": "application/json"})
    return status, json.loads(body)


def test_pages_carry_security_headers_and_escape_the_tenant(gw: Gateway) -> None:
    status, h, body = request(gw, "GET", "/")
    assert status == 200 and h["content-type"].startswith("text/html")
    assert "script-src 'self'" in h["content-security-policy"]
    assert h["referrer-policy"] == "no-referrer" and h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert b"Small &lt;b&gt;&amp;&lt;/b&gt;" in body and b"<b>" not in body
    assert b"<script>" not in body and b"<script type=\"module\" src=\"/static/app.js\">" in body
    status, h, _ = request(gw, "GET", "/embed")
    assert "frame-ancestors 'self' https://shop.example" in h["content-security-policy"]
    assert "x-frame-options" not in h and "cross-origin-opener-policy" not in h
    for path in ("/api/tenant", "/static/app.js", "/nope", "/api/nope"):
        _, h, _ = request(gw, "GET", path)
        assert "content-security-policy" in h and h["x-content-type-options"] == "nosniff", path


def test_static_files_and_service_worker(gw: Gateway) -> None:
    for name in ("app.js", "veil-format.js", "veil-folder.js", "veil-zip.js", "folder-app.js", "common.js",
                 "upload.js", "style.css"):
        status, h, body = request(gw, "GET", f"/static/{name}")
        assert status == 200 and body
    status, h, _ = request(gw, "GET", "/sw.js")
    assert status == 200 and h["service-worker-allowed"] == "/dl/" and h["content-type"].startswith("text/javascript")
    assert request(gw, "GET", "/static/..%2f..%2fapp.py")[0] == 404
    assert request(gw, "GET", "/static/sw.js")[0] == 404  # only the listed files


def test_unknown_host_is_a_clear_404(gw: Gateway) -> None:
    status, _, body = request(gw, "GET", "/api/tenant", headers={"Host": "other.example"})
    assert status == 404 and json.loads(body)["error"] == "unknown_host"


def test_openapi_documents_every_api_route(gw: Gateway) -> None:
    status, _, body = request(gw, "GET", "/api/openapi.json")
    doc = json.loads(body)
    assert status == 200 and doc["openapi"].startswith("3.")
    routes = {(m, rx.pattern) for m, rx, _ in gw.router._routes if rx.pattern.startswith("^/api/")}
    documented = set()
    for path, ops in doc["paths"].items():
        import re

        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"
        for method in ops:
            documented.add((method.upper(), pattern))
    assert routes == documented


def test_upload_refusals_come_before_storage(gw: Gateway) -> None:
    status, err = begin(gw, size=2 * 10**6)
    assert status == 413 and err["error"] == "too_large"
    for bad in ({"si": "zz" * 16}, {"si": "00"}, {"size": -1}, {"size": "1"}, {"segsize": 100},
                {"meta": "***"}, {"k": 0}, {"n": 300}, {"extra": 1}, {"meta": base64.b64encode(b"x").decode()}):
        status, err = begin(gw, **bad)
        assert status == 400, (bad, status, err)
    status, err = begin(gw)
    assert status == 503 and err["message"] == "the network is busy; try again in a minute" and err["request_id"]
    assert request(gw, "POST", "/api/uploads", b"{}", {"Content-Type": "text/plain"})[0] == 415
    assert request(gw, "POST", "/api/uploads", b"[1]", {"Content-Type": "application/json"})[0] == 400
    big = b"{" + b" " * (70 * 1024) + b"}"
    assert request(gw, "POST", "/api/uploads", big, {"Content-Type": "application/json"})[0] == 413
    status, _, body = request(gw, "PUT", "/api/uploads/nope/segments?start=0", b"x")
    assert status == 404 and json.loads(body)["error"] == "no_upload"
    assert request(gw, "POST", "/api/uploads/nope/finish")[0] == 404
    assert request(gw, "DELETE", "/api/uploads/nope")[0] == 404
    assert MAX_BATCH_BYTES <= 16 << 20


def test_file_reads_check_the_link_first(gw: Gateway) -> None:
    vpayload = ReadCap(bytes(32), bytes(32)).verify_cap().payload()
    assert request(gw, "GET", f"/api/files/{vpayload[:-2]}aa/manifest")[0] == 400
    assert request(gw, "GET", "/api/files/" + "a" * 300 + "/manifest")[0] == 400
    status, _, body = request(gw, "GET", f"/api/files/{vpayload}/manifest")
    assert status == 503 and json.loads(body)["error"] == "unavailable"  # no nodes to ask
    assert request(gw, "GET", f"/api/files/{vpayload}/segments?start=x")[0] == 400


def test_folder_slot_requests_check_the_id_and_the_record_first(gw: Gateway) -> None:
    from veil.format.folder import Listing
    from veil.format.folder_caps import new_folder
    from veil.format.folder_seal import seal_body
    from veil.format.mutable import sign_record

    w = new_folder()
    rec = sign_record(w.signing_key, 1, seal_body(w, 1, Listing()))
    slot = w.slot_id.hex()
    octets = {"Content-Type": "application/octet-stream"}
    for bad in ("zz" * 32, "00" * 31, "x"):
        status, _, body = request(gw, "GET", f"/api/mutable/{bad}")
        assert status == 400 and json.loads(body)["error"] == "bad_link", bad
    status, _, body = request(gw, "PUT", f"/api/mutable/{slot}", b"VLMS garbage", octets)
    assert status == 400 and json.loads(body)["error"] == "bad_record"
    other = new_folder().slot_id.hex()  # a valid record of another folder
    status, _, body = request(gw, "PUT", f"/api/mutable/{other}", rec.raw, octets)
    assert status == 400 and "another slot" in json.loads(body)["message"]
    assert request(gw, "PUT", f"/api/mutable/{slot}", bytes(300_000), octets)[0] == 413
    # a valid id and record: no storage nodes to ask
    assert request(gw, "GET", f"/api/mutable/{slot}")[0] == 503
    assert request(gw, "PUT", f"/api/mutable/{slot}", rec.raw, octets)[0] == 503
    status, h, _ = request(gw, "DELETE", f"/api/mutable/{slot}")
    assert status == 405 and h["allow"] == "GET, PUT"
    status, h, body = request(gw, "GET", f"/d/{slot}")
    assert status == 200 and b'data-mode="folder"' in body and "frame-ancestors 'none'" in h["content-security-policy"]
