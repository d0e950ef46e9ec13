"""Failures the data path must survive: dead nodes, corrupt shares, restarts, full disks."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put

from veil.format.caps import parse_read_cap
from veil.format.share import HEADER_SIZE


def storage_specs(d: RunningDevnet) -> list:  # type: ignore[type-arg]
    return [s for s in d.devnet.specs() if "storage" in s.roles]


def share_file(d: RunningDevnet, cap: str, shnum: int) -> tuple[str, Path]:
    """(the holder's node name, the share file) of share ``shnum``."""
    si = parse_read_cap(cap).storage_index.hex()
    for spec in storage_specs(d):
        # storage v2: DATA/storage/slots/<si[:2]>/<si>/<manifest hash>/<shnum>
        for p in (d.devnet.node_dir(spec) / "storage" / "slots" / si[:2] / si).glob(f"*/{shnum}"):
            return spec.name, p
    raise AssertionError(f"share {shnum} not found on any node")


def test_corrupt_share_is_detected_and_routed_around(devnet: RunningDevnet, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    src = tmp_path / "c.bin"
    src.write_bytes(data)
    caps = put(devnet, src)
    name, path = share_file(devnet, caps["read cap"], 0)
    port = next(s.port for s in storage_specs(devnet) if s.name == name)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    p = devnet.veil("get", caps["read cap"], "-o", "-", check=True)
    assert p.stdout == data
    # the client found the nodes through the DHT, so it names the bad node by its address
    assert f"127.0.0.1:{port}".encode() in p.stderr and b"corrupt data for share 0" in p.stderr
    p = devnet.veil("check", caps["verify cap"], "--full")
    assert p.returncode == 1
    out = p.stdout.decode()
    assert "share   0" in out and "CORRUPT" in out and "healthy: 9 of 10" in out


def test_restart_keeps_data(devnet: RunningDevnet, tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    src = tmp_path / "keep.bin"
    src.write_bytes(data)
    cap = put(devnet, src)["read cap"]
    devnet.devnet.down()
    assert all(devnet.devnet.pid_of(s) is None for s in devnet.devnet.specs())
    devnet.up()
    assert devnet.veil("get", cap, "-o", "-", check=True).stdout == data


def test_any_three_of_ten_nodes_suffice_and_two_do_not(devnet: RunningDevnet, tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    src = tmp_path / "k.bin"
    src.write_bytes(data)
    cap = put(devnet, src)["read cap"]
    specs = storage_specs(devnet)
    # kill 7 of the 10 storage nodes, including the holders of the data shares 0, 1 and 2
    holders = {share_file(devnet, cap, i)[0] for i in range(3)}
    victims = [s for s in specs if s.name in holders] + [s for s in specs if s.name not in holders]
    for s in victims[:7]:
        devnet.devnet.stop_node(s, signal.SIGKILL)
    p = devnet.veil("get", cap, "-o", "-", check=True)
    assert p.stdout == data
    devnet.devnet.stop_node(victims[7], signal.SIGKILL)
    p = devnet.veil("get", cap, "-o", str(tmp_path / "out"))
    assert p.returncode == 5
    err = p.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "found 2 of the 3 shares needed" in err[0], err
    assert not (tmp_path / "out").exists()
    # uploads need `happy` (7) distinct nodes: two live nodes cannot take a new file
    p = devnet.veil("put", str(src))
    assert p.returncode == 5 and b"distinct nodes" in p.stderr


@pytest.fixture(scope="module")
def small_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("veil-small")
    d = RunningDevnet(home / "devnet", home)
    d.up(10, ["--capacity", "3MB"])
    try:
        yield d
    finally:
        d.devnet.down()


def test_full_disks_refuse_cleanly_and_lose_nothing(small_devnet: RunningDevnet, tmp_path: Path) -> None:
    small = os.urandom(1_000_000)
    (tmp_path / "small").write_bytes(small)
    cap = put(small_devnet, tmp_path / "small")["read cap"]
    (tmp_path / "big").write_bytes(os.urandom(20_000_000))
    p = small_devnet.veil("put", str(tmp_path / "big"))
    assert p.returncode == 5
    err = p.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "no space" in err[0], err
    assert small_devnet.veil("get", cap, "-o", "-", check=True).stdout == small
    for spec in storage_specs(small_devnet):
        incoming = small_devnet.devnet.node_dir(spec) / "storage" / "incoming"
        assert list(incoming.iterdir()) == []


def test_seed_node_restarted_alone_rejoins_the_dht(small_devnet: RunningDevnet, tmp_path: Path) -> None:
    # node-01 started the DHT with no --bootstrap; its routing table is not kept across restarts,
    # so after a crash it must join through the nodes still running.
    seed = storage_specs(small_devnet)[0]
    small_devnet.devnet.stop_node(seed, signal.SIGKILL)
    small_devnet.up()  # restarts only the dead node and waits until it has joined
    data = os.urandom(200_000)
    (tmp_path / "after").write_bytes(data)
    cap = put(small_devnet, tmp_path / "after")["read cap"]
    assert small_devnet.veil("get", cap, "-o", "-", check=True).stdout == data
