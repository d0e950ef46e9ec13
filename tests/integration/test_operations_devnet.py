"""Operating nodes and gateways, against real processes: logs, /metrics, /healthz, trusted proxies,
the access log, `veil devnet status --metrics` (docs/specs/operations.md).

One small devnet (4 storage nodes, a validator and a gateway, every node with its loopback
metrics port) and one extra node process running the gateway role on port 0, trusting
127.0.0.1 as its reverse proxy, with a log file."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put

from veil.devnet.metrics import metrics_port
from veil.devnet.specs import NodeSpec
from veil.net.http1 import MAX_HEAD

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DEADLINE = 120.0
READ_ROUTE = "/v1/shares/{si}/{shnum}"


def scrape(port: int) -> Samples:
    """Every sample of a node's /metrics, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    status, _, body = http_get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}  # fmt: skip


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def http_get(port: int, path: str, headers: dict[str, str] | None = None,
             method: str = "GET") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def wait_for(what: str, cond: object, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not callable(cond) or not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def log_of(d: RunningDevnet, name: str) -> str:
    return (d.devnet.root / name / "node.log").read_text(errors="replace")


@dataclass
class ProxiedGateway:
    proc: subprocess.Popen[bytes]
    data: Path
    log_file: Path
    stdout: list[str]
    gateway_port: int
    metrics_port: int


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("ops-home")
    dn = RunningDevnet(home / "devnet", home)
    dn.up(4)
    try:
        yield dn
    finally:
        dn.devnet.down()


@pytest.fixture(scope="module")
def proxied(d: RunningDevnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedGateway]:
    """`veil node run --role gateway` on port 0 behind a 'proxy' at 127.0.0.1 (the test itself)."""
    data = tmp_path_factory.mktemp("proxied-gw")
    log_file = data / "logs" / "gateway.log"
    cmd = [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(data), "--listen", "127.0.0.1:0",
           "--role", "gateway", "--gateway-listen", "127.0.0.1:0", "--network", str(d.devnet.static_network_path),
           "--trusted-proxy", "127.0.0.1/32", "--trusted-proxy", "::1/128", "--metrics-listen", "127.0.0.1:0",
           "--log-file", str(log_file)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=d.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("metrics on" in ln for ln in lines):
            line = proc.stdout.readline().decode()
            if not line:
                raise AssertionError(f"the gateway node exited early: {lines}")
            lines.append(line.strip())
        gw = next(ln for ln in lines if "gateway on" in ln)
        met = next(ln for ln in lines if "metrics on" in ln)
        yield ProxiedGateway(proc, data, log_file, lines, int(gw.rsplit(":", 1)[1]),
                             int(met.rsplit(":", 1)[1].split("/")[0]))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def storage_specs(d: RunningDevnet) -> list[NodeSpec]:
    return [s for s in d.devnet.specs() if "storage" in s.roles]


def test_node_run_prints_the_address_it_listens_on_for_port_0(proxied: ProxiedGateway) -> None:
    info = json.loads((proxied.data / "node.json").read_text())
    first = proxied.stdout[0]
    assert re.fullmatch(rf"veil node: {info['node_id'][:16]} listening on 127\.0\.0\.1:{info['port']} "
                        rf"\(roles gateway, pid {info['pid']}\)", first), first  # fmt: skip
    assert info["port"] != 0 and info["metrics_port"] == proxied.metrics_port
    assert f"veil node: gateway on http://127.0.0.1:{proxied.gateway_port}" in proxied.stdout
    text = proxied.log_file.read_text()
    assert re.search(rf"INFO veil\.node: node {info['node_id'][:16]} listening on 127\.0\.0\.1:{info['port']}", text)


def test_devnet_nodes_log_start_peers_and_the_addresses_they_listen_on(d: RunningDevnet) -> None:
    for spec in storage_specs(d):
        port = metrics_port(d.devnet, spec)
        assert port
        wait_for(f"{spec.name} to log a joined peer", lambda s=spec: "INFO veil.dht: peer joined: " in log_of(d, s.name))
        text = log_of(d, spec.name)
        assert f"listening on 127.0.0.1:{spec.port}" in text
        assert f"veil node: metrics on http://127.0.0.1:{port}/metrics" in text


def test_healthz_on_metrics_port_node_port_and_gateway(d: RunningDevnet, proxied: ProxiedGateway) -> None:
    for spec in d.devnet.specs():
        port = metrics_port(d.devnet, spec)
        assert port, spec.name
        status, _, body = http_get(port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", (spec.name, body)
    # the node's own TLS port answers too (a load balancer's TLS check cannot pin the node id)
    spec = storage_specs(d)[0]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", spec.port), timeout=60) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ") and b'"status": "ok"' in reply
    status, _, body = http_get(proxied.gateway_port, "/healthz", {"Host": "any.example"})
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert http_get(proxied.metrics_port, "/nothing")[0] == 404


def test_metrics_move_after_a_put_and_a_get(d: RunningDevnet, tmp_path: Path) -> None:
    ports = [metrics_port(d.devnet, s) for s in storage_specs(d)]
    assert all(ports)
    before = [scrape(p) for p in ports if p]
    src = tmp_path / "ops.bin"
    src.write_bytes(os.urandom(600_000))
    caps = put(d, src, "-k", "2", "-n", "4", "--happy", "4")
    mid = [scrape(p) for p in ports if p]

    def delta(a: list[Samples], b: list[Samples], name: str, **labels: str) -> float:
        return sum(total(y, name, **labels) - total(x, name, **labels) for x, y in zip(a, b, strict=True))

    assert delta(before, mid, "veil_storage_shares_stored_total") == 4  # n shares, one per node
    assert delta(before, mid, "veil_storage_used_bytes") > 600_000 * 4 / 2  # 4 shares of about size/k each
    assert delta(before, mid, "veil_storage_share_bytes_received_total") > 600_000 * 4 / 2
    out = tmp_path / "back.bin"
    d.veil("get", caps["read cap"], "-o", str(out), check=True)
    assert out.read_bytes() == src.read_bytes()
    after = [scrape(p) for p in ports if p]
    served = delta(mid, after, "veil_storage_share_bytes_served_total")
    assert served >= 600_000  # at least k shares' worth of blocks left the nodes
    assert delta(mid, after, "veil_http_requests_total", server="node", method="GET", route=READ_ROUTE, status="200") >= 2
    assert delta(mid, after, "veil_http_request_duration_seconds_count", server="node", route=READ_ROUTE) >= 2
    assert delta(mid, after, "veil_http_response_bytes_total", server="node", route=READ_ROUTE) >= served
    for s in after:
        assert total(s, "veil_dht_routing_table_contacts") >= 1
        assert total(s, "veil_dht_joined") == 1
        assert ("veil_repair_queue_files", frozenset()) in s
        assert total(s, "process_resident_memory_bytes") > 0
    # the logs say so as well, and carry no cap, key or token
    stored = sum(log_of(d, s.name).count("INFO veil.storage: stored share") for s in storage_specs(d))
    assert stored >= 4
    assert any("INFO veil.storage: serving share" in log_of(d, s.name) for s in storage_specs(d))
    key_part = caps["read cap"].rsplit(":", 1)[-1]
    for spec in d.devnet.specs():
        text = log_of(d, spec.name)
        token = (d.devnet.root / spec.name / "control.token")
        assert key_part not in text and caps["read cap"] not in text
        if token.exists():
            assert token.read_text().strip() not in text


def test_gateway_metrics_count_its_requests(proxied: ProxiedGateway) -> None:
    route = "/api/tenant"
    before = total(scrape(proxied.metrics_port), "veil_http_requests_total", server="gateway", route=route, status="200")
    for _ in range(3):
        assert http_get(proxied.gateway_port, route)[0] == 200
    after = scrape(proxied.metrics_port)
    assert total(after, "veil_http_requests_total", server="gateway", route=route, status="200") == before + 3
    assert ("veil_gateway_uploads_open", frozenset()) in after
    # what the server refuses itself, before any handler (here: a head over its limit), is counted too
    refused = total(after, "veil_http_requests_total", server="gateway", route="unmatched", status="431")
    with socket.create_connection(("127.0.0.1", proxied.gateway_port), timeout=60) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD + 1024) + b"\r\n\r\n")
        try:
            reply = sock.recv(64)
        except ConnectionResetError:  # the server may close before the kernel hands us its answer
            reply = b""
        assert not reply or reply.startswith(b"HTTP/1.1 431 "), reply
    wait_for("the refusal in the metrics", lambda: total(scrape(proxied.metrics_port), "veil_http_requests_total",
             server="gateway", route="unmatched", status="431") == refused + 1)  # fmt: skip


def _access_line(path: Path, rid: str) -> dict[str, str]:
    line = ""

    def found() -> bool:
        nonlocal line
        hits = [ln for ln in path.read_text(errors="replace").splitlines() if f"rid={rid} " in ln]
        line = hits[-1] if hits else ""
        return bool(hits)

    wait_for(f"the access line of request {rid}", found)
    return dict(kv.split("=", 1) for kv in line.split(": ", 1)[1].split() if "=" in kv)


def test_trusted_proxy_is_honoured_and_the_access_log_has_the_fields(proxied: ProxiedGateway) -> None:
    status, headers, body = http_get(proxied.gateway_port, "/static/style.css",
                                     {"X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Request-Id": "proxy-rid-1"})
    assert status == 200 and headers["x-request-id"] == "proxy-rid-1"  # a trusted proxy's id is kept
    f = _access_line(proxied.log_file, "proxy-rid-1")
    assert f["client"] == "203.0.113.7" and f["peer"] == "127.0.0.1"  # rightmost untrusted hop
    assert f["tenant"] == "veil" and f["status"] == "200" and f["method"] == "GET" and f["path"] == "/static/style.css"
    assert int(f["out"]) > len(body) and float(f["ms"]) >= 0
    status, headers, _ = http_get(proxied.gateway_port, "/api/nothing", {"Forwarded": 'for="[2001:db8::7]:4711"'})
    assert status == 404
    f = _access_line(proxied.log_file, headers["x-request-id"])
    assert f["client"] == "2001:db8::7" and f["status"] == "404"
    # an upload session's id is a bearer secret: the log names the route instead
    status, headers, _ = http_get(proxied.gateway_port, "/api/uploads/sessionsecret4242", method="DELETE")
    assert status == 404
    f = _access_line(proxied.log_file, headers["x-request-id"])
    assert f["path"] == "/api/uploads/{uid}" and f["method"] == "DELETE"
    assert "sessionsecret4242" not in proxied.log_file.read_text()


def test_untrusted_forwarded_headers_are_ignored(d: RunningDevnet) -> None:
    """The devnet's gateway trusts no proxy: a visitor cannot pick its own address (or request id)."""
    gw_port = int(str(d.net.gateway if d.net else "").rsplit(":", 1)[1])
    status, headers, _ = http_get(gw_port, "/api/tenant", {"X-Forwarded-For": "203.0.113.7",
                                                            "Forwarded": "for=203.0.113.8", "X-Request-Id": "forged"})
    assert status == 200 and headers["x-request-id"] != "forged" and re.fullmatch(r"[0-9a-f]{16}", headers["x-request-id"])
    gw = next(s for s in d.devnet.specs() if "gateway" in s.roles)
    f = _access_line(d.devnet.root / gw.name / "node.log", headers["x-request-id"])
    assert f["client"] == "127.0.0.1" and f["tenant"] == "veil" and f["status"] == "200"


def test_devnet_status_shows_the_metrics(d: RunningDevnet) -> None:
    p = d.veil("devnet", "status", "--metrics", check=True)
    out = p.stdout.decode()
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("metrics "))
    assert lines[head].split() == ["metrics", "port", "stored", "served", "requests", "contacts", "repairq", "earned"]
    rows = {ln.split()[0]: ln for ln in lines[head + 1:]}
    for spec in d.devnet.specs():
        assert spec.name in rows and "unreachable" not in rows[spec.name], out
    node1 = rows[storage_specs(d)[0].name].split()
    assert int(node1[1]) == metrics_port(d.devnet, storage_specs(d)[0])
    assert int(node1[-4]) > 0  # requests


def test_bad_operations_options_are_one_clear_line(d: RunningDevnet, tmp_path: Path) -> None:
    p = d.veil("node", "run", "--data", str(tmp_path / "n"), "--metrics-listen", "0.0.0.0:0")
    assert p.returncode == 2 and b"--metrics-public" in p.stderr and len(p.stderr.decode().strip().splitlines()) == 1
    p = d.veil("gateway", "--trusted-proxy", "nonsense", "--listen", "127.0.0.1:0")
    assert p.returncode == 2 and b"--trusted-proxy 'nonsense'" in p.stderr
    assert len(p.stderr.decode().strip().splitlines()) == 1
    p = d.veil("node", "run", "--data", str(tmp_path / "n"), "--log-level", "loud")
    assert p.returncode == 2 and b"--log-level" in p.stderr
    p = d.veil("node", "run", "--data", str(tmp_path / "n"), "--advertise", "no-port")
    assert p.returncode == 2 and b"bad --advertise 'no-port'" in p.stderr


def test_standalone_gateway_logs_counts_and_trusts_its_proxy(d: RunningDevnet, tmp_path: Path) -> None:
    """`veil gateway` (not the node role): its own metrics listener, log file and trusted proxy."""
    log_file = tmp_path / "gw.log"
    cmd = [sys.executable, "-m", "veil.cli.main", "gateway", "--listen", "127.0.0.1:0",
           "--network", str(d.devnet.static_network_path), "--trusted-proxy", "127.0.0.0/8",
           "--metrics-listen", "127.0.0.1:0", "--log-file", str(log_file)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=d.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        lines: list[str] = []
        while not any("metrics on" in ln for ln in lines):
            line = proc.stderr.readline().decode()
            if not line:
                raise AssertionError(f"veil gateway exited early: {lines}")
            lines.append(line.strip())
        gw_port = int(next(ln for ln in lines if "gateway: serving" in ln).rsplit(":", 1)[1])
        m_port = int(next(ln for ln in lines if "metrics on" in ln).rsplit(":", 1)[1].split("/")[0])
        status, headers, _ = http_get(gw_port, "/api/tenant", {"X-Forwarded-For": "192.0.2.44, 127.0.0.9"})
        assert status == 200
        f = _access_line(log_file, headers["x-request-id"])
        assert f["client"] == "192.0.2.44" and f["peer"] == "127.0.0.1" and f["tenant"] == "veil"
        s = scrape(m_port)
        assert total(s, "veil_http_requests_total", server="gateway", route="/api/tenant", status="200") == 1
        assert total(s, "veil_gateway_uploads_open") == 0 and ("veil_gateway_uploads_open", frozenset()) in s
        status, _, body = http_get(m_port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_node_that_cannot_join_is_unhealthy_and_says_why(d: RunningDevnet, tmp_path: Path) -> None:
    """/healthz answers 503 with the problem, and the log has the warning, while the DHT join fails."""
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    dead_port = dead.getsockname()[1]
    log_file = tmp_path / "lonely.log"
    cmd = [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(tmp_path / "lonely"),
           "--listen", "127.0.0.1:0", "--bootstrap", f"127.0.0.1:{dead_port}", "--metrics-listen", "127.0.0.1:0",
           "--log-file", str(log_file), "--log-level", "warning", "--storage-admission", "open"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=d.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        line = ""
        while "metrics on" not in line:
            line = proc.stdout.readline().decode()
            assert line, "the node exited early"
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        status, _, body = http_get(port, "/healthz")
        assert status == 503
        assert json.loads(body)["problems"] == ["dht: not joined"] and json.loads(body)["status"] == "unhealthy"
        wait_for("the join failure in the log", lambda: "WARNING veil.dht: joining the DHT failed" in log_file.read_text())
        text = log_file.read_text()
        assert " INFO " not in text  # --log-level warning
    finally:
        dead.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _nginx_server_directives() -> list[str]:
    """The server block of docs/operating.md's nginx example, minus what only a public server
    has (listen, server_name, TLS): the proxying part is run as documented."""
    doc = (Path(__file__).parents[2] / "docs" / "operating.md").read_text()
    block = doc.split("```nginx\n", 1)[1].split("```", 1)[0]
    body = block.split("server {", 1)[1].rsplit("}", 1)[0]
    skip = ("listen ", "server_name ", "ssl_", "http2")
    return [ln for ln in body.splitlines() if not ln.strip().startswith(skip)]


def test_gateway_behind_nginx_as_documented(d: RunningDevnet, tmp_path: Path) -> None:
    """A real nginx with docs/operating.md's proxy settings in front of `veil gateway`: the visitor's
    address is the one nginx saw (a forged X-Forwarded-For is not), nginx's request id is the
    gateway's; a visitor going around the proxy cannot name itself."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    assert nginx is not None, "nginx is not installed: dev/test.sh installs Debian's nginx"
    from veil.devnet.specs import free_port

    log_file = tmp_path / "gw.log"
    gw_port, proxy_port = free_port(), free_port()
    gw = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "gateway", "--listen", f"127.0.0.1:{gw_port}",
                           "--network", str(d.devnet.static_network_path), "--trusted-proxy", "127.0.0.2/32",
                           "--log-file", str(log_file)], env=d.env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)  # fmt: skip
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    prefix.chmod(0o777)  # nginx's workers run as nobody and keep their temp files here
    lines = [ln.replace("127.0.0.1:8080", f"127.0.0.1:{gw_port}") for ln in _nginx_server_directives()]
    conf = prefix / "nginx.conf"
    temps = "".join(f"  {k}_temp_path {prefix}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(
        f"worker_processes 1;\nerror_log {prefix}/error.log;\npid {prefix}/nginx.pid;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n  access_log off;\n{temps}  server {{\n    listen 127.0.0.1:{proxy_port};\n"
        "    proxy_bind 127.0.0.2;  # so the gateway can tell the proxy (trusted) from the visitor (127.0.0.1)\n"
        + "\n".join(lines) + "\n  }\n}\n"
    )
    check = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    proxy = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answers(port: int) -> bool:
            try:
                return http_get(port, "/healthz")[0] == 200
            except OSError:
                return False

        wait_for("the gateway behind nginx", lambda: answers(gw_port) and answers(proxy_port))
        status, headers, _ = http_get(proxy_port, "/api/tenant",
                                      {"X-Forwarded-For": "1.2.3.4", "X-Request-Id": "forged-id"})
        assert status == 200
        rid = headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid), rid  # nginx's $request_id, kept by the gateway
        f = _access_line(log_file, rid)
        assert f["client"] == "127.0.0.1" and f["peer"] == "127.0.0.2" and f["status"] == "200"
        # straight to the gateway, around the proxy: the headers are the visitor's own, ignored
        status, headers, _ = http_get(gw_port, "/api/tenant", {"X-Forwarded-For": "1.2.3.4", "X-Request-Id": "mine"})
        assert status == 200 and headers["x-request-id"] != "mine"
        f = _access_line(log_file, headers["x-request-id"])
        assert f["client"] == "127.0.0.1" and f["peer"] == "127.0.0.1"
        assert "1.2.3.4" not in log_file.read_text()
    finally:
        for proc in (proxy, gw):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
