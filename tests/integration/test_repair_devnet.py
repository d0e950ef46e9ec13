"""`veil check` / `veil repair` / `veil node drain` on a real devnet whose clients find nodes
only through the DHT (joined through bootstrap addresses). The nodes' automatic repairer is
slowed down here so that what repairs is the command under test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from churn_helpers import ChurnDevnet

from veil.client.check import check
from veil.client.network import Network, network_from_json
from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.format.caps import VerifyCap, parse_verify_cap
from veil.format.share import HEADER_SIZE
from veil.net.client import NodeUnreachable
from veil.protocol.nodeinfo import NodeInfo
from veil.protocol.storage import slot_path

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChurnDevnet]:
    d = ChurnDevnet(tmp_path_factory.mktemp("repair-home"))
    d.up(10, ["--repair-interval", "3600"])
    try:
        yield d
    finally:
        d.devnet.down()


def _file(tmp: Path, name: str, size: int) -> Path:
    p = tmp / name
    p.write_bytes(os.urandom(size))
    return p


def _same(net: ChurnDevnet, cap: str, src: Path, tmp: Path) -> None:
    out = tmp / (src.name + ".out")
    net.veil("get", cap, "-o", str(out), "--force")
    assert out.read_bytes() == src.read_bytes()


def test_repair_recreates_lost_shares_twice_and_concurrently(net: ChurnDevnet, tmp_path: Path) -> None:
    src = _file(tmp_path, "a.bin", 2_500_000)
    caps = net.put(src)
    vcap = caps["verify cap"]
    holders = net.holders(vcap)
    assert sum(len(s) for s in holders.values()) == 10
    victims = sorted(holders, key=lambda n: -len(holders[n]))[:2]
    lost = set().union(*(holders[v] for v in victims))
    for v in victims:
        net.veil("devnet", "kill", v)
    rep = net.check(vcap)
    assert set(rep.missing) == lost and rep.recoverable

    # Two repairers at once: both succeed, neither lowers the count.
    procs = [subprocess.Popen([sys.executable, "-m", "veil.cli.main", "repair", vcap], env=net.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode() for o in outs]
    rep = net.check(vcap, full=True)
    assert rep.healthy and not rep.corrupt
    assert all(s.node.addr not in {f"127.0.0.1:{x.port}" for x in net.devnet.specs() if x.name in victims}
               for s in rep.shares)

    # Again, on a healthy file: nothing to do, nothing lost.
    again = net.veil("repair", vcap)
    assert b"nothing to repair" in again.stdout
    after = net.check(vcap, full=True)
    assert after.healthy and len(after.shares) == len(rep.shares)
    _same(net, caps["read cap"], src, tmp_path)


def test_corrupt_share_is_replaced_elsewhere(net: ChurnDevnet, tmp_path: Path) -> None:
    src = _file(tmp_path, "b.bin", 700_000)
    caps = net.put(src)
    vcap = caps["verify cap"]
    si = parse_verify_cap(vcap).storage_index.hex()
    name, shnums = sorted(net.holders(vcap).items())[0]
    shnum = min(shnums)
    (path,) = (net.devnet.root / name / "storage" / "slots" / si[:2] / si).glob(f"*/{shnum}")
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 5] ^= 0x40
    path.write_bytes(bytes(data))

    checked = net.veil("check", vcap, "--full", check=False)
    assert checked.returncode == 1 and b"CORRUPT" in checked.stdout
    fixed = net.veil("repair", vcap, "--full")
    assert f"share {shnum:>3}: re-created on".encode() in fixed.stdout
    rep = net.check(vcap, full=True)
    assert rep.healthy
    assert [(s.shnum, s.node.port) for s in rep.corrupt] == [(shnum, next(x.port for x in net.devnet.specs() if x.name == name))]
    _same(net, caps["read cap"], src, tmp_path)


def test_drain_hands_shares_over_then_stops(net: ChurnDevnet, tmp_path: Path) -> None:
    files = [_file(tmp_path, f"d{i}.bin", 300_000 + i) for i in range(3)]
    caps = [net.put(f) for f in files]
    counts: dict[str, int] = {}
    for c in caps:
        for name, shnums in net.holders(c["verify cap"]).items():
            counts[name] = counts.get(name, 0) + len(shnums)
    leaving = max(counts, key=lambda n: counts[n])
    spec = next(s for s in net.devnet.specs() if s.name == leaving)
    slots_dir = net.devnet.node_dir(spec) / "storage" / "slots"

    def on_disk() -> list[Path]:
        return [p for p in slots_dir.glob("*/*/*/*") if p.name.isdigit()]

    held = len(on_disk())
    assert held >= counts[leaving]
    out = net.veil("node", "drain", "--data", str(net.devnet.node_dir(spec)))
    # Every share is handed over, except a copy damaged by an earlier test (never passed on).
    damaged = out.stderr.count(b"damaged local share")
    assert f"drain: {held - damaged} shares handed over; node stopped".encode() in out.stdout
    assert net.devnet.pid_of(spec) is None
    assert len(on_disk()) == damaged
    for f, c in zip(files, caps, strict=True):
        rep = net.check(c["verify cap"], full=True)
        assert rep.healthy, rep.missing
        assert leaving not in net.holders(c["verify cap"])
        _same(net, c["read cap"], f, tmp_path)


def _holds(net: Network, node: NodeInfo, cap: VerifyCap) -> bool:
    """Whether ``node`` says it holds a share of the file; a node killed by an earlier test does not."""
    try:
        reply = net.client(node).call("GET", slot_path(cap.storage_index, cap.manifest_hash), deadline=60)
    except NodeUnreachable:
        return False
    return bool(reply["shares"])


def test_upload_puts_one_share_per_operator_a_network_file_names(net: ChurnDevnet, tmp_path: Path) -> None:
    """Real nodes, a static network file that names each node's operator (five operators, most
    with two nodes): a 5-share upload lands on five operators, not on the first five nodes of
    rendezvous order. Only the nodes still running are listed (earlier tests kill some)."""
    static = json.loads(net.devnet.static_network_path.read_text())
    running = {s.port for s in net.devnet.specs() if net.devnet.pid_of(s) is not None}
    static["nodes"] = [n for n in static["nodes"] if "storage" not in n["roles"] or n["port"] in running]
    storage = [n for n in static["nodes"] if "storage" in n["roles"]]
    assert len(storage) >= 5
    for i, n in enumerate(storage):
        n["operator"] = f"op{i % 5}"
    path = tmp_path / "operators.json"
    path.write_text(json.dumps(static))
    src = _file(tmp_path, "ops.bin", 300_000)
    out = net.veil("put", "--json", str(src), "-k", "2", "-n", "5", "--network", str(path))
    assert out.returncode == 0, out.stderr.decode()
    vcap = json.loads(out.stdout)["verify_cap"]
    ops = network_from_json(static)
    assert ops.id_bits == DEVNET_ID_BITS
    cap = parse_verify_cap(vcap)
    try:
        rep = check(ops, cap)
        # Every node is asked itself, with a deadline no busy machine misses (a `check` can miss a
        # node that is slow to answer, and a repairer may have added a copy since).
        holders = [n for n in ops.nodes if "storage" in n.roles and _holds(ops, n, cap)]
    finally:
        ops.close()
    assert rep.healthy
    assert {n.operator for n in holders} == {f"op{i}" for i in range(5)}  # five operators, none left out
