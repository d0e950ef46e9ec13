"""Helpers for integration tests: a devnet of real node processes, and the real `veil` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from veil.client.network import Network
from veil.devnet.manager import Devnet


class RunningDevnet:
    def __init__(self, root: Path, home: Path, dht: bool = False) -> None:
        self.devnet = Devnet(root)
        self.home = home
        self.env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(root)}
        if dht:  # the client knows only bootstrap addresses and finds storage nodes through the DHT
            self.env["VEIL_NETWORK"] = str(root / "network-dht.json")
        self.net: Network | None = None

    def up(self, nodes: int = 10, args: list[str] | None = None) -> Network:
        self.net, _ = self.devnet.up(nodes, ["storage"], args or [])
        return self.net

    def veil(self, *args: str, input: bytes | None = None, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run the real `veil` CLI against this devnet."""
        p = subprocess.run(
            [sys.executable, "-m", "veil.cli.main", *args], env=self.env, input=input, capture_output=True, timeout=300
        )
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def node(self, name: str) -> object:
        return next(s for s in self.devnet.specs() if s.name == name)


def put_json(p: subprocess.CompletedProcess[bytes]) -> dict[str, str]:
    """The caps of a `veil put --json` run, under the names text mode prints (read cap, verify cap, link)."""
    v = json.loads(p.stdout.decode().splitlines()[-1])
    return {"read cap": v["read_cap"], "verify cap": v["verify_cap"], "link": v["link"] or ""}


def put(d: RunningDevnet, path: Path, *extra: str) -> dict[str, str]:
    """`veil put --json` a file; returns its read cap, verify cap and link."""
    return put_json(d.veil("put", "--json", str(path), *extra, check=True))
