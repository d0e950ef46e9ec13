"""Anonymous transfers over real relay processes and real storage nodes, TLS on 127.0.0.1.

Every relay listens on its own loopback address (127.0.1.N) and the client's circuits leave from
127.0.0.2, so the peer addresses each process records (VEIL_TRACE_DIR, net/trace.py) say who
is who: the trace test shows no storage node saw the client and no relay saw both the client and
a storage node. A relay SIGSTOPped or killed mid-download costs circuits, not the download.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from veil.client.download import download
from veil.client.network import Network, load_network
from veil.client.upload import upload
from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.devnet.manager import Devnet
from veil.format.caps import ReadCap
from veil.net.client import PeerClient

CLIENT_IP = "127.0.0.2"
RELAYS = 6
NODES = 5
ENC = {"k": 3, "n": 5, "happy": 5}


@dataclass
class Relay:
    ip: str
    port: int  # the node's HTTPS port
    relay_port: int
    node_id: str
    proc: subprocess.Popen[bytes]


@dataclass
class Env:
    root: Path
    devnet: Devnet
    relays: list[Relay]
    network: Path
    trace: Path
    storage: dict[str, str]  # node id prefix (the trace label) -> "host:port"

    def net(self, hops: int = 3) -> Network:
        net = load_network(self.network)
        net.use_circuits(hops, source=CLIENT_IP)
        assert net.anon is not None
        net.anon.build_timeout = 5.0
        return net

    def veil(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, "VEIL_HOME": str(self.root / "home"), "VEIL_NETWORK": str(self.network)}
        return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True,
                              timeout=300)  # fmt: skip


def _wait_json(path: Path, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} did not appear") from None
            time.sleep(0.05)


def _wait_announced(r: Relay, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    peer = PeerClient(r.ip, r.port, bytes.fromhex(r.node_id), timeout=5)
    while not peer.call("GET", "/v1/node")["roles"]["relay"]["announced"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"relay at {r.ip} did not announce itself in the DHT")
        time.sleep(0.1)
    peer.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("circuits")
    trace = root / "trace"
    trace.mkdir()
    old = os.environ.get("VEIL_TRACE_DIR")
    os.environ["VEIL_TRACE_DIR"] = str(trace)  # inherited by every node and relay started below
    d = Devnet(root / "devnet")
    relays: list[Relay] = []
    try:
        d.up(NODES, ["storage"], [])
        network = root / "network.json"
        boot = ",".join(d.bootstrap_addresses())
        for i in range(RELAYS):
            data = root / f"relay-{i + 1}"
            ip = f"127.0.1.{i + 1}"
            log = open(root / f"relay-{i + 1}.log", "ab")
            # Every relay announces itself in the DHT's relay directory; the even ones have no network
            # file and let a successor through only when the DHT vouches for it (a signed record).
            listed = ["--network", str(network)] if i % 2 == 0 else []
            proc = subprocess.Popen(
                [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(data), "--role", "relay",
                 "--listen", f"{ip}:0", *listed, "--relay-max-per-ip", "1024", "--relay-announce", boot],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
            log.close()
            info = _wait_json(data / "node.json")
            relays.append(Relay(ip, int(str(info["port"])), int(str(info["relay_port"])), str(info["node_id"]), proc))
        listed = json.loads(d.static_network_path.read_text())
        storage = {n["node_id"][:16]: f"{n['host']}:{n['port']}" for n in listed["nodes"] if "storage" in n["roles"]}
        listed["nodes"] += [{"name": f"relay-{i + 1}", "host": r.ip, "port": r.port, "relay_port": r.relay_port,
                             "node_id": r.node_id, "roles": ["relay"]} for i, r in enumerate(relays)]  # fmt: skip
        network.write_text(json.dumps(listed))
        for r in relays:
            _wait_announced(r)
        yield Env(root, d, relays, network, trace, storage)
    finally:
        for r in relays:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.kill(r.proc.pid, sig)
                except ProcessLookupError:
                    pass
        for r in relays:
            try:
                r.proc.wait(20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait(10)
        d.down()
        if old is None:
            os.environ.pop("VEIL_TRACE_DIR", None)
        else:
            os.environ["VEIL_TRACE_DIR"] = old


def _put(env: Env, data: bytes, name: str) -> ReadCap:
    net = env.net()  # a new network object, so new circuits, for every file
    try:
        return upload(net, io.BytesIO(data), len(data), name, **ENC).cap  # type: ignore[arg-type]
    finally:
        net.close()


def _get(env: Env, cap: ReadCap, hops: int = 3) -> tuple[bytes, Network]:
    net = env.net(hops)
    out = io.BytesIO()
    try:
        download(net, cap, out)
    finally:
        net.close()
    return out.getvalue(), net


def _trace(env: Env) -> list[dict[str, str]]:
    lines = []
    for p in env.trace.glob("*.jsonl"):
        lines += [json.loads(line) for line in p.read_text().splitlines() if line]
    return lines


def test_anonymous_files_round_trip_and_nobody_sees_both_ends(env: Env) -> None:
    files = {"small": os.urandom(40_000), "medium": os.urandom(1_500_000), "large": os.urandom(5_000_000)}
    for p in env.trace.glob("*.jsonl"):
        p.unlink()  # only what these transfers cause
    caps = {name: _put(env, data, name) for name, data in files.items()}
    for name, data in files.items():
        got, net = _get(env, caps[name])
        assert got == data, name
        assert net.anon is not None and net.anon.stats()["circuits"] >= 3
        exits = list(net.anon._exit_of.values())
        assert len(exits) == len(set(exits))  # 6 relays, at most 5 nodes: no exit carried two of them
    lines = _trace(env)
    relay_ips = {r.ip for r in env.relays}
    relay_addrs = {f"{r.ip}:{r.relay_port}" for r in env.relays}
    storage_addrs = set(env.storage.values())
    seen_by_storage = {ln["peer"].rpartition(":")[0] for ln in lines if ln["kind"] == "accept" and ln["who"] in env.storage}
    assert CLIENT_IP not in seen_by_storage, "a storage node saw the client's address"
    assert seen_by_storage & relay_ips, "storage nodes saw no exit relay at all (did the transfers go direct?)"
    hops = [ln for ln in lines if ln["kind"] == "relay"]
    assert hops
    for ln in hops:
        pred = ln["peer"].rpartition(":")[0]
        assert pred == CLIENT_IP or pred in relay_ips, ln  # a neighbour: the client or a relay
        assert ln["next"] in relay_addrs | storage_addrs, ln
        assert not (pred == CLIENT_IP and ln["next"] in storage_addrs), f"a relay saw both the client and a node: {ln}"
    assert any(ln["peer"].startswith(CLIENT_IP + ":") for ln in hops)  # entries saw the client ...
    assert any(ln["next"] in storage_addrs for ln in hops)  # ... and exits the nodes
    assert not [ln for ln in lines if ln["who"] == "client" and ln["kind"] == "direct"]  # nothing bypassed them
    client_lines = [ln for ln in lines if ln["kind"] == "client"]
    assert client_lines and all(ln["peer"].startswith(CLIENT_IP + ":") and ln["next"] in relay_addrs
                                for ln in client_lines)  # fmt: skip
    env.root.joinpath("caps.json").write_text(json.dumps({k: v.to_string() for k, v in caps.items()}))


def test_cli_anon_with_one_and_five_hops(env: Env, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(700_000))
    p = env.veil("put", "--anon", "--hops", "1", "-n", "5", "--happy", "5", str(src))
    assert p.returncode == 0, p.stderr.decode()
    fields = dict(line.split(":", 1) for line in p.stdout.decode().splitlines())
    cap, vcap = fields["read cap"].strip(), fields["verify cap"].strip()
    out = tmp_path / "out.bin"
    p = env.veil("get", "--anon", "--hops", "5", "-q", "-o", str(out), cap)
    assert p.returncode == 0, p.stderr.decode()
    assert out.read_bytes() == src.read_bytes()
    p = env.veil("check", "--anon", "--hops", "2", vcap)
    assert p.returncode == 0 and b"healthy: 5 of 5 shares" in p.stdout, p.stderr.decode()
    p = env.veil("repair", "--anon", vcap)
    assert p.returncode == 0 and b"nothing to repair" in p.stdout, p.stderr.decode()
    pe = subprocess.run([sys.executable, "-m", "veil.cli.main", "info", cap], capture_output=True, timeout=300,
                        env={**os.environ, "VEIL_HOME": str(env.root / "home"), "VEIL_NETWORK": str(env.network),
                             "VEIL_ANON": "1"})  # fmt: skip
    assert pe.returncode == 0 and b"size:        700000 bytes" in pe.stdout, pe.stderr.decode()


def _dht_only(env: Env) -> dict[str, object]:
    """A network file with bootstrap addresses only, and the devnet's staked uploader key (its
    nodes admit storage by ticket)."""
    listed = json.loads(env.network.read_text())
    return {"bootstrap": env.devnet.bootstrap_addresses(), "id_bits": DEVNET_ID_BITS,
            **{k: listed[k] for k in ("devnet_uploader", "chain_id", "genesis", "validators") if k in listed}}


def test_relays_found_in_the_dht_directory(env: Env, tmp_path: Path) -> None:
    # A network file with bootstrap addresses only: storage nodes and relays both come from the DHT.
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps(_dht_only(env)))
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(300_000))
    p = env.veil("put", "--anon", "--network", str(boot), "-q", "-n", "5", "--happy", "5", str(src))
    assert p.returncode == 0, p.stderr.decode()
    out = tmp_path / "out.bin"
    # five hops of six relays: every circuit passes relays that know no network file
    p = env.veil("get", "--anon", "--hops", "5", "--network", str(boot), "-q", "-o", str(out), p.stdout.decode().strip())
    assert p.returncode == 0, p.stderr.decode()
    assert out.read_bytes() == src.read_bytes()


def _circuits(env: Env) -> int:
    total = 0
    for r in env.relays:
        peer = PeerClient(r.ip, r.port, bytes.fromhex(r.node_id), timeout=10)
        total += int(peer.call("GET", "/v1/node")["roles"]["relay"]["circuits"])
        peer.close()
    return total


def test_gateway_fetches_through_circuits(env: Env) -> None:
    import socket
    import urllib.request

    data = os.urandom(200_000)
    cap = _put(env, data, "via-gateway")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "gateway", "--anon", "--no-access-log",
                           "--listen", f"127.0.0.1:{port}", "--network", str(env.network)],
                          env={**os.environ, "VEIL_HOME": str(env.root / "home")},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        vcap = cap.verify_cap().payload()
        before = _circuits(env)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/files/{vcap}/segments", timeout=60) as r:
                    body = r.read()
                break
            except OSError:
                if time.monotonic() > deadline or gw.poll() is not None:
                    raise
                time.sleep(0.2)
        assert len(body) >= len(data)  # sealed segments: the plaintext plus tags, decrypted by the browser
        assert _circuits(env) > before  # it went through the relays
    finally:
        gw.terminate()
        gw.wait(20)


def test_dht_lookups_go_over_circuits_too(env: Env, tmp_path: Path) -> None:
    # DHT discovery (bootstrap addresses, no storage nodes listed), relays listed: the client
    # finds storage nodes and share holders with DHT lookups, and those must not reach a node directly.
    listed = json.loads(env.network.read_text())
    dht_net = tmp_path / "dht.json"
    dht_net.write_text(json.dumps({**_dht_only(env), "nodes": [n for n in listed["nodes"] if "relay_port" in n]}))
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(250_000))
    for p in env.trace.glob("*.jsonl"):
        p.unlink()
    run = {**os.environ, "VEIL_HOME": str(env.root / "home"), "VEIL_NETWORK": str(dht_net),
           "VEIL_ANON": "1", "VEIL_ANON_SOURCE": "127.0.0.3"}  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "put", "-q", "-n", "5", "--happy", "5", str(src)],
                       env=run, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    out = tmp_path / "out.bin"
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "get", "-q", "-o", str(out), p.stdout.decode().strip()],
                       env=run, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    assert out.read_bytes() == src.read_bytes()
    lines = _trace(env)
    seen = {ln["peer"].rpartition(":")[0] for ln in lines if ln["kind"] == "accept" and ln["who"] in env.storage}
    assert "127.0.0.3" not in seen, "a storage node saw the client (a DHT lookup went direct)"
    direct = [ln for ln in lines if ln["who"] == "client" and ln["kind"] == "direct"]
    assert not direct, f"the client connected to nodes directly: {direct[:3]}"
    assert any(ln["who"] == "client" and ln["kind"] == "client" for ln in lines)  # (its circuits are traced)


def test_circuits_command_shows_hops_and_build_times(env: Env) -> None:
    p = env.veil("circuits", "--hops", "3", "--count", "5")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode().splitlines()
    assert out[0] == f"{RELAYS} relays known; 3-hop circuits to {NODES} storage nodes:"
    rows = [line for line in out[1:] if " via " in line]
    assert len(rows) == NODES and all(r.count(" > ") == 2 and "built in" in r for r in rows), out
    exits = {r.split(" > ")[-1].split("  built")[0] for r in rows}
    assert len(exits) == NODES  # a different exit for every node (6 relays, 5 nodes)


def test_circuits_that_cannot_be_built_end_in_one_line_not_a_hang(env: Env, tmp_path: Path) -> None:
    # Three "relays" that accept TCP and never speak TLS (as a stalled relay does): every build
    # times out at its entry, which is named and left out, until too few are left.
    import socket
    import threading

    mutes = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold(ls: socket.socket) -> None:
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(ls.accept()[0])
            except TimeoutError:
                pass

    threads = [threading.Thread(target=hold, args=(ls,), daemon=True) for ls in mutes]
    for t in threads:
        t.start()
    try:
        listed = json.loads(env.network.read_text())
        listed["nodes"] = [n for n in listed["nodes"] if "relay_port" not in n] + [
            {"name": f"mute-{i}", "host": "127.0.0.1", "port": 1, "relay_port": ls.getsockname()[1],
             "node_id": bytes([i + 1]).hex() * 32, "roles": ["relay"]} for i, ls in enumerate(mutes)]  # fmt: skip
        bad = tmp_path / "mute.json"
        bad.write_text(json.dumps(listed))
        cap = _put(env, os.urandom(50_000), "unreachable-by-circuit").to_string()
        p = env.veil("get", "--anon", "--network", str(bad), "-o", str(tmp_path / "out"), cap)
        err = p.stderr.decode().strip().splitlines()
        assert p.returncode == 5, err
        assert [line for line in err if line.startswith("veil: error:")] == [err[-1]]
        assert "mute-" in err[-1] and "did not answer within" in err[-1], err  # the stalled relay, named
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for s in held + mutes:
            s.close()


def test_folders_over_circuits(env: Env, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(os.urandom(5000))
    (tree / "sub" / "b.bin").write_bytes(os.urandom(120_000))
    for p in env.trace.glob("*.jsonl"):
        p.unlink()
    run = {**os.environ, "VEIL_HOME": str(env.root / "home"), "VEIL_NETWORK": str(env.network),
           "VEIL_ANON_SOURCE": "127.0.0.4"}  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "put", "-r", "--anon", "-q", "-n", "5", "--happy", "5",
                        str(tree)], env=run, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    wcap = p.stdout.decode().strip().splitlines()[-1]
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "get", "-r", wcap, "-o", str(out)],
                       env={**run, "VEIL_ANON": "1"}, capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    assert (out / "a.txt").read_bytes() == (tree / "a.txt").read_bytes()
    assert (out / "sub" / "b.bin").read_bytes() == (tree / "sub" / "b.bin").read_bytes()
    lines = _trace(env)
    assert not [ln for ln in lines if ln["who"] == "client" and ln["kind"] == "direct"]
    assert any(ln["kind"] == "relay" and ln["peer"].startswith("127.0.0.4:") for ln in lines)


def test_too_few_relays_is_one_clear_line(env: Env, tmp_path: Path) -> None:
    listed = json.loads(env.network.read_text())
    relays = [n for n in listed["nodes"] if "relay_port" in n]
    listed["nodes"] = [n for n in listed["nodes"] if "relay_port" not in n] + relays[:1]
    few = tmp_path / "few.json"
    few.write_text(json.dumps(listed))
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 1000)
    p = env.veil("put", "--anon", "--network", str(few), str(src))
    assert p.returncode == 5
    assert p.stderr.decode().strip() == "veil: error: need 3 relays for a circuit, found 1"
    p = env.veil("put", "--anon", "--hops", "6", str(src))
    assert p.returncode == 2 and "--hops must be between 1 and 5" in p.stderr.decode()


def _download_hitting(env: Env, data: bytes, cap: ReadCap, sig: signal.Signals) -> tuple[Network, Relay]:
    """Download ``cap`` over circuits; once 1 MB has arrived, send ``sig`` to a relay in use."""
    net = env.net()
    assert net.anon is not None
    hit: list[Relay] = []

    def progress(n: int) -> None:
        done[0] += n
        if done[0] > 1_000_000 and not hit:
            # the busiest live circuit: one a share stream of this download is using
            live = max((c for c in net.anon.circuits if c.alive), key=lambda c: c.moved)  # type: ignore[union-attr]
            exit_id = live.relays[-1].node_id.hex()
            relay = next(r for r in env.relays if r.node_id == exit_id)
            os.kill(relay.proc.pid, sig)
            hit.append(relay)

    done = [0]
    out = io.BytesIO()
    try:
        download(net, cap, out, progress=progress)
    finally:
        net.close()
    assert hit, "the download ended before a relay could be hit"
    assert out.getvalue() == data
    return net, hit[0]


def _named(net: Network, relay: Relay, timeout: float = 60.0) -> str:
    label = next(h.label for h in net.relays() if h.node_id.hex() == relay.node_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in net.warnings():
            if label in w:
                return w
        time.sleep(0.1)
    raise AssertionError(f"{label} was never named: {net.warnings()}")


def test_relay_stopped_mid_download_costs_a_circuit_not_the_file(env: Env) -> None:
    data = os.urandom(16_000_000)  # 8 batches: most requests are still to come when the relay is hit
    cap = _put(env, data, "stopped")
    net, relay = _download_hitting(env, data, cap, signal.SIGSTOP)
    try:
        w = _named(net, relay)  # by the probe after a stalled request, or by a build that stalled at it
        assert "did not complete a TLS handshake" in w or "did not answer" in w, w
    finally:
        os.kill(relay.proc.pid, signal.SIGCONT)


def test_relay_killed_mid_download_costs_a_circuit_not_the_file(env: Env) -> None:
    data = os.urandom(16_000_000)  # 8 batches: most requests are still to come when the relay is hit
    cap = _put(env, data, "killed")
    net, relay = _download_hitting(env, data, cap, signal.SIGKILL)
    relay.proc.wait(30)
    w = _named(net, relay)  # by the probe after the circuit broke, or by a build that was refused
    assert "unreachable" in w or "Connection refused" in w, w
