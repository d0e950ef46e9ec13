"""One real `veil node run` storage process on 127.0.0.1, driven with raw storage-v2 requests."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from veil.client.network import Network, NodeInfo
from veil.net.client import PeerClient
from veil.protocol.storage import commit_path, encode_commit, oneshot_path, upload_path, uploads_path
from veil.testing.shares import FakeShare


class NodeProc:
    def __init__(self, data: Path, nofile: int | None = None, args: tuple[str, ...] = (),
                 listen: str = "127.0.0.1:0") -> None:
        self.data = data
        self.listen = listen
        self.nofile = nofile
        # A bare storage node stores for anyone (these tests drive the storage protocol); nodes
        # that admit by ticket (the default) say so with their own --storage-admission/--validator.
        ticketed = "--storage-admission" in args or "--validator" in args or "--role" in args
        self.args = args if ticketed else ("--storage-admission", "open", *args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: NodeInfo | None = None

    def start(self) -> NodeInfo:
        (self.data / "node.json").unlink(missing_ok=True)
        limit = self.nofile

        def preexec() -> None:
            os.setsid()
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        log = open(self.data.parent / f"{self.data.name}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(self.data), "--listen", self.listen,
             *self.args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=preexec,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            f = self.data / "node.json"
            if f.exists():
                v = json.loads(f.read_text())
                if v.get("pid") == self.proc.pid:
                    self.info = NodeInfo(v["host"], int(v["port"]), bytes.fromhex(v["node_id"]), "n0")
                    return self.info
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise AssertionError("node did not start")

    def client(self, timeout: float = 30.0) -> PeerClient:
        assert self.info is not None
        return PeerClient(self.info.host, self.info.port, self.info.node_id, timeout)

    def network(self) -> Network:
        assert self.info is not None
        return Network([self.info])

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_files(self) -> int:
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def session_upload(c: PeerClient, sh: FakeShare, per_put: int = 2) -> bytes:
    """Upload ``sh`` through an upload session (POST, PUTs, commit with the manifest)."""
    uid = c.call("POST", uploads_path(), sh.request.to_value())["id"]
    for s in range(0, len(sh.blocks), per_put):
        c.request("PUT", upload_path(uid, s), sh.body(s, s + per_put))
    got = c.request("POST", commit_path(uid), encode_commit(sh.commit), {"Content-Type": "application/cbor"}).cbor()
    root: bytes = got["root"]
    return root


def oneshot(c: PeerClient, sh: FakeShare) -> bytes:
    root: bytes = c.request("PUT", oneshot_path(sh.si, sh.shnum), sh.oneshot()).cbor()["root"]
    return root
