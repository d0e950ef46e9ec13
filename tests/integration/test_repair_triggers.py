"""Repair driven by departures, not by the sweep: a devnet whose background sweep is all but
off (--repair-sweep-rate 0.001: one visit per node, then one per 1000 minutes) still brings every
file back to n healthy shares after the file's leader and the next holder in line are killed
(data wiped) and replaced — because their departure, seen by the liveness probes and the DHT,
triggers the checks. The sweep counters show that no sweep visit did it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from churn_helpers import ChurnDevnet, wait_for

from veil.format.caps import parse_verify_cap
from veil.net.client import PeerClient
from veil.protocol.placement import permuted

pytestmark = pytest.mark.integration

NODES = 7
ARGS = ["--repair-interval", "1", "--repair-sweep-rate", "0.001", "--repair-threshold", "n"]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChurnDevnet]:
    d = ChurnDevnet(tmp_path_factory.mktemp("trigger-home"))
    d.up(NODES, ARGS)
    try:
        yield d
    finally:
        d.devnet.down()


def _repairers(net: ChurnDevnet) -> dict[str, dict[str, Any]]:
    ids = net.devnet.known_ids()
    out = {}
    for s in net.devnet.specs():
        if "repairer" in s.roles and net.devnet.pid_of(s) is not None:
            out[s.name] = PeerClient("127.0.0.1", s.port, ids[s.name]).call("GET", "/v1/node")["roles"]["repairer"]
    return out


def test_departures_trigger_repair_without_the_sweep(net: ChurnDevnet, tmp_path: Path) -> None:
    files = []
    for i in range(2):
        p = tmp_path / f"t{i}.bin"
        p.write_bytes(os.urandom(100_000 + i))
        out = net.veil("put", "-k", "2", "-n", "5", str(p)).stdout.decode()
        caps = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
        files.append((p, caps))
    held = {name: len(s) for _, c in files for name, s in net.holders(c["verify cap"]).items()}
    # Every holder has seen its files (the store scan runs every second) and spent its one sweep
    # visit before anything fails.
    wait_for(lambda: all(_repairers(net)[name]["sweep_visits"] == 1 for name in held), timeout=60,
             what="store scans")
    before = _repairers(net)

    # The first file's leader and the next holder in line leave for good.
    vcap = parse_verify_cap(files[0][1]["verify cap"])
    ids = net.devnet.known_ids()
    holders = sorted(net.holders(files[0][1]["verify cap"]))
    order = [holders[i] for i in permuted(vcap.storage_index, [ids[h] for h in holders])]
    victims = order[:2]
    for v in victims:
        net.veil("devnet", "kill", v, "--wipe")
    net.veil("devnet", "add", "--nodes", "2", "--repair-interval", "1", "--repair-threshold", "n")

    def all_full() -> bool:
        return all(len(net.check(c["verify cap"]).healthy_shares) == 5 for _, c in files)

    try:
        wait_for(all_full, timeout=120, what="triggered repair of every file")
    except AssertionError as e:
        raise AssertionError(f"{e}; repairers: {_repairers(net)}") from None
    after = _repairers(net)
    survivors = [name for name in before if name not in victims]
    # Nothing the sweep did: no node had a sweep visit left after its first (a node that held
    # nothing before spends its one on the share repair gives it).
    sweeps = {n: (before[n]["sweep_visits"], after[n]["sweep_visits"]) for n in survivors}
    assert all(b == a == 1 if n in held else a <= 1 for n, (b, a) in sweeps.items()), sweeps
    assert sum(after[n]["triggered_visits"] for n in survivors) > 0
    assert sum(after[n]["departures"] for n in survivors) > 0
    assert sum(st["repaired_shares"] for st in after.values()) > 0
    for path, caps in files:
        rep = net.check(caps["verify cap"], full=True)
        assert rep.healthy and not rep.corrupt
        got = tmp_path / (path.name + ".out")
        net.veil("get", caps["read cap"], "-o", str(got))
        assert got.read_bytes() == path.read_bytes()
