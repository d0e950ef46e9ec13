"""Helpers for the repair and churn tests: a devnet whose clients find nodes only through the
DHT (network-dht.json: bootstrap addresses, no storage node list), and the real `veil` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devnet_helpers import put_json

from veil.client.check import CheckReport, check
from veil.client.network import Network, load_network
from veil.devnet.manager import Devnet
from veil.format.caps import parse_verify_cap


class ChurnDevnet:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.devnet = Devnet(home / "devnet")
        self.env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(self.devnet.root),
                    "VEIL_NETWORK": str(self.devnet.dht_network_path)}

    def up(self, nodes: int, args: list[str]) -> None:
        self.devnet.up(nodes, ["storage"], args)

    def veil(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=self.env, capture_output=True,
                           timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def put(self, path: Path) -> dict[str, str]:
        return put_json(self.veil("put", "--json", str(path)))

    def network(self) -> Network:
        """A DHT-backed client network (bootstrap addresses only)."""
        net = load_network(self.devnet.dht_network_path)
        assert net.discovery == "dht"
        return net

    def check(self, vcap: str, full: bool = False) -> CheckReport:
        net = self.network()
        try:
            return check(net, parse_verify_cap(vcap), full=full)
        finally:
            net.close()

    def holders(self, vcap: str) -> dict[str, set[int]]:
        """Devnet node name -> share numbers it holds healthy copies of."""
        names = {f"127.0.0.1:{s.port}": s.name for s in self.devnet.specs()}
        out: dict[str, set[int]] = {}
        for s in self.check(vcap).shares:
            if s.ok:
                out.setdefault(names[s.node.addr], set()).add(s.shnum)
        return out


def wait_for(cond: Callable[[], bool], timeout: float = 90.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def assert_restored(net: ChurnDevnet, files: list[tuple[Path, dict[str, str]]], out_dir: Path,
                    check_file: Callable[[str, bool], CheckReport], *get_args: str) -> None:  # fmt: skip
    """Every file back to n healthy, uncorrupted shares (``check_file(verify cap, full)``), and
    byte-identical when read back with `veil get … GET_ARGS`."""
    for path, caps in files:
        rep = check_file(caps["verify cap"], True)
        assert len(rep.healthy_shares) == rep.manifest.n and not rep.corrupt
        out = out_dir / (path.name + ".out")
        net.veil("get", caps["read cap"], "-o", str(out), *get_args)
        assert out.read_bytes() == path.read_bytes()
