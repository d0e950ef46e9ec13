"""Hostile peers against real node processes (issue 18, defects 1 and 7): a node that drips one
byte every 2 s and SIGSTOPped holders hang nothing, and are named; a node's error text with
terminal escapes never reaches the terminal raw."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put
from fake_nodes import FakeNode, key_ranked_first

from veil.format.caps import parse_read_cap

HANG_GUARD = 120  # seconds: a hang fails the test instead of blocking the suite (not a speed bound)


def _static_network(d: RunningDevnet, tmp: Path, extra: list[FakeNode]) -> Path:
    value = json.loads(d.devnet.static_network_path.read_text())
    value["nodes"] = [n for n in value["nodes"] if "storage" in n.get("roles", ["storage"])]
    value["nodes"] += [f.json() for f in extra]
    p = tmp / f"net-{len(extra)}-{os.getpid()}.json"
    p.write_text(json.dumps(value))
    return p


def _veil(d: RunningDevnet, net: Path, *args: str) -> tuple[int, bytes, bytes]:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env={**d.env, "VEIL_NETWORK": str(net)},
                       capture_output=True, timeout=HANG_GUARD)  # fmt: skip
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def files(devnet: RunningDevnet, tmp_path: Path) -> Iterator[dict[str, tuple[bytes, dict[str, str]]]]:
    out = {}
    for name, size in (("small", 64 * 1024), ("large", 3 << 20)):
        data = os.urandom(size)
        src = tmp_path / name
        src.write_bytes(data)
        out[name] = (data, put(devnet, src))
    yield out


def test_dripping_node_and_stopped_holders_hang_nothing(devnet: RunningDevnet, tmp_path: Path,
                                                        files: dict[str, tuple[bytes, dict[str, str]]]) -> None:
    data, caps = files["small"]
    si = parse_read_cap(caps["read cap"]).storage_index
    real = json.loads(devnet.devnet.static_network_path.read_text())["nodes"]
    ids = [bytes.fromhex(n["node_id"]) for n in real if "storage" in n.get("roles", ["storage"])]
    drip = FakeNode(tmp_path, "drip", key_ranked_first(si, ids))  # first in the small file's rendezvous order
    net = _static_network(devnet, tmp_path, [drip])
    specs = [s for s in devnet.devnet.specs() if "storage" in s.roles]
    stopped = specs[:2]
    try:
        for s in stopped:
            os.kill(devnet.devnet.pid_of(s), signal.SIGSTOP)  # type: ignore[arg-type]
        for name in ("small", "large"):
            want, c = files[name]
            rc, out, err = _veil(devnet, net, "get", c["read cap"], "-o", "-")
            assert rc == 0 and out == want, err
            if name == "small":
                assert drip.address.encode() in err  # the slow node is named
        # the default network: storage nodes found through the DHT, two of them stopped
        p = devnet.veil("get", files["large"][1]["read cap"], "-o", "-")
        assert p.returncode == 0 and p.stdout == files["large"][0], p.stderr
        rc, out, err = _veil(devnet, net, "info", caps["read cap"])
        assert rc == 0 and drip.address.encode() in out
        rc, out, err = _veil(devnet, net, "check", caps["verify cap"])
        assert rc in (0, 1) and drip.address.encode() in out, (out, err)
        # n - k = 7 holders stopped (and the dripping node): the three left serve the file
        for s in specs[2:7]:
            os.kill(devnet.devnet.pid_of(s), signal.SIGSTOP)  # type: ignore[arg-type]
            stopped.append(s)
        want, c = files["large"]
        rc, out, err = _veil(devnet, net, "get", c["read cap"], "-o", "-")
        assert rc == 0 and out == want, err
    finally:
        for s in stopped:
            os.kill(devnet.devnet.pid_of(s), signal.SIGCONT)  # type: ignore[arg-type]
        drip.close()
    assert data


def test_node_error_text_with_escapes_is_sanitised(devnet: RunningDevnet, tmp_path: Path,
                                                   files: dict[str, tuple[bytes, dict[str, str]]]) -> None:
    data, caps = files["small"]
    si = parse_read_cap(caps["read cap"]).storage_index
    real = json.loads(devnet.devnet.static_network_path.read_text())["nodes"]
    ids = [bytes.fromhex(n["node_id"]) for n in real if "storage" in n.get("roles", ["storage"])]
    evil = FakeNode(tmp_path, "ansi", key_ranked_first(si, ids))
    net = _static_network(devnet, tmp_path, [evil])
    try:
        rc, out, err = _veil(devnet, net, "get", caps["read cap"], "-o", "-")
        assert rc == 0 and out == data
        assert evil.requests >= 1 and evil.address.encode() in err and b"EVIL" in err
        assert b"\x1b" not in err and b"\x07" not in err
        rc, out, err = _veil(devnet, net, "check", caps["verify cap"])
        assert b"\x1b" not in out + err and evil.address.encode() in out
    finally:
        evil.close()
