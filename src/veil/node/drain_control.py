"""The operator's side of `veil node drain`: ask a running node (found through its data dir)
to hand its shares over, wait for it, then stop the node with SIGTERM.

The node's ``control.token`` (mode 0600, in the data dir) authorises the request: whoever can
read the node's data dir may make it leave; nobody else can.

Imports from: veil.errors, veil.net.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from veil.errors import UnavailableError, UsageError
from veil.net.client import PeerClient

CONTROL_HEADER = "X-Veil-Control"
POLL = 0.2


def _call(peer: PeerClient, method: str, token: bytes) -> dict[str, Any]:
    reply = peer.request(method, "/v1/node/drain", b"" if method == "POST" else None, {CONTROL_HEADER: token.decode()})
    value = reply.cbor()
    if not isinstance(value, dict):
        raise UnavailableError(f"{peer.where}: bad reply to drain")
    return value


def drain_node(data_dir: Path, stop: bool = True, timeout: float = 3600.0) -> dict[str, Any]:
    """Drain the node running from ``data_dir``; returns its final drain status."""
    try:
        info = json.loads((data_dir / "node.json").read_text())
        token = (data_dir / "control.token").read_bytes().strip()
        peer = PeerClient(str(info["host"]), int(info["port"]), bytes.fromhex(info["node_id"]))
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"no running storage node found in {data_dir}: {e}") from e
    st = _call(peer, "POST", token)
    deadline = time.monotonic() + timeout
    while st.get("state") == "running":
        if time.monotonic() > deadline:
            raise UnavailableError(f"the drain did not finish within {timeout:g} s; the node keeps running")
        time.sleep(POLL)
        st = _call(peer, "GET", token)
    if st.get("state") != "done":
        raise UnavailableError(f"the drain failed: {st.get('error') or st}")
    peer.close()
    if stop:
        pid = int(info["pid"])
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return st
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if not _alive(pid):
                break
            time.sleep(0.05)
    return st


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
