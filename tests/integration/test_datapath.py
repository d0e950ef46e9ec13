"""The data path end to end: the real `veil` CLI against real node processes over TLS.

The client here is given only bootstrap addresses (network-dht.json): every put, get, info and
check finds its storage nodes and share holders through the DHT."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put

from veil.format.caps import ReadCap, parse_read_cap

SEG = 1 << 20


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("veil-dht-home")
    d = RunningDevnet(home / "devnet", home, dht=True)
    d.up(10)
    try:
        yield d
    finally:
        d.devnet.down()


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 50_000_000])
def test_put_get_roundtrip(devnet: RunningDevnet, tmp_path: Path, size: int) -> None:
    src = tmp_path / f"in-{size}.bin"
    src.write_bytes(os.urandom(size))
    caps = put(devnet, src)
    assert caps["read cap"].startswith("veil:r1:")
    assert caps["verify cap"].startswith("veil:v1:")
    assert "/f/" in caps["link"] and "#" in caps["link"]
    out = tmp_path / "out.bin"
    devnet.veil("get", caps["read cap"], "-o", str(out), check=True)
    assert out.read_bytes() == src.read_bytes()
    # the share link works too, and -o - streams to stdout
    p = devnet.veil("get", caps["link"], "-o", "-", check=True)
    assert p.stdout == src.read_bytes()


def test_default_output_name_and_no_overwrite(devnet: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "report.txt"
    src.write_bytes(b"quarterly numbers\n" * 1000)
    cap = put(devnet, src)["read cap"]
    work = tmp_path / "work"
    work.mkdir()
    env_cwd = dict(devnet.env)
    import subprocess
    import sys

    def get(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "veil.cli.main", "get", cap, *args], cwd=work, env=env_cwd,
                              capture_output=True, timeout=120)

    assert get().returncode == 0
    assert (work / "report.txt").read_bytes() == src.read_bytes()
    (work / "report.txt").write_bytes(b"mine")
    p = get()
    assert p.returncode == 2 and b"exists; use --force" in p.stderr
    assert (work / "report.txt").read_bytes() == b"mine"  # untouched
    assert get("--force").returncode == 0
    assert (work / "report.txt").read_bytes() == src.read_bytes()
    assert [x.name for x in work.iterdir()] == ["report.txt"]  # no temp files left behind


def test_range_reads(devnet: RunningDevnet, tmp_path: Path) -> None:
    data = os.urandom(3 * SEG + 12345)
    src = tmp_path / "r.bin"
    src.write_bytes(data)
    cap = put(devnet, src)["read cap"]
    for a, b in [(0, 10), (SEG - 5, SEG + 5), (2 * SEG, 3 * SEG + 12345), (100, 100), (len(data) - 1, len(data) + 50)]:
        p = devnet.veil("get", cap, "--range", f"{a}-{b}", "-o", "-", check=True)
        assert p.stdout == data[a:b], (a, b)
    p = devnet.veil("get", cap, "--range", "5000-", "-o", "-", check=True)
    assert p.stdout == data[5000:]
    p = devnet.veil("get", cap, "--range", "x-y", "-o", "-")
    assert p.returncode == 2 and b"bad range" in p.stderr


def test_info_and_check(devnet: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    src.write_bytes(os.urandom(2 * SEG))
    caps = put(devnet, src, "-k", "4", "-n", "8")
    p = devnet.veil("info", caps["read cap"], check=True)
    text = p.stdout.decode()
    assert "name:        photo.jpg" in text
    assert f"size:        {2 * SEG} bytes" in text
    assert "image/jpeg" in text
    assert "4-of-8" in text
    assert "8 of 8 found" in text
    p = devnet.veil("check", caps["verify cap"], check=True)
    assert "healthy: 8 of 8 shares" in p.stdout.decode()
    p = devnet.veil("check", caps["verify cap"], "--full", check=True)
    assert "corrupt: 0" in p.stdout.decode()


def test_bad_caps_give_one_clear_line(devnet: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"a" * 5000)
    caps = put(devnet, src)
    cap = caps["read cap"]
    for bad, code, words in [
        (cap[:40], 2, b"truncated"),
        (cap[:30] + ("a" if cap[30] != "a" else "b") + cap[31:], 2, b"garbled"),
        ("https://x.example/f/abc", 2, b"no key"),
        ("hello", 2, b"not a Veil read cap"),
        (caps["verify cap"], 2, b"verify cap"),
    ]:
        p = devnet.veil("get", bad, "-o", str(tmp_path / "x"))
        assert p.returncode == code, (bad, p.stderr)
        err = p.stderr.decode().strip().splitlines()
        assert len(err) == 1 and err[0].startswith("veil: error:") and words.decode() in err[0]
        assert b"Traceback" not in p.stderr


def test_wrong_key_and_unknown_file(devnet: RunningDevnet, tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(os.urandom(10_000))
    b.write_bytes(os.urandom(10_000))
    ca, cb = put(devnet, a), put(devnet, b)
    # a link whose key part belongs to another file
    mixed = ca["link"].split("#")[0] + "#" + cb["link"].split("#")[1]
    p = devnet.veil("get", mixed, "-o", str(tmp_path / "x"))
    assert p.returncode == 3 and b"does not belong to this file" in p.stderr
    # a read cap with a wrong key but another file's manifest hash: slots are keyed by (storage
    # index, manifest hash) (storage protocol v2), so no node has that slot at all
    ra, rb = parse_read_cap(ca["read cap"]), parse_read_cap(cb["read cap"])
    p = devnet.veil("get", ReadCap(rb.file_key, ra.manifest_hash).to_string(), "-o", str(tmp_path / "x"))
    assert p.returncode == 4 and b"no node has this file" in p.stderr
    # a file no node has
    p = devnet.veil("get", ReadCap(os.urandom(32), os.urandom(32)).to_string(), "-o", str(tmp_path / "x"))
    assert p.returncode == 4 and b"no node has this file" in p.stderr
    assert not (tmp_path / "x").exists()


def test_put_of_missing_file(devnet: RunningDevnet, tmp_path: Path) -> None:
    p = devnet.veil("put", str(tmp_path / "nope"))
    assert p.returncode == 2 and b"no such file" in p.stderr


def test_devnet_status_lists_nodes(devnet: RunningDevnet) -> None:
    p = devnet.veil("devnet", "status", check=True)
    text = p.stdout.decode()
    assert text.count(" up ") >= 10
    assert "shares" in text
