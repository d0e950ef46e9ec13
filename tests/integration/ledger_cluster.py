"""A validator cluster of real `veil node run --role validator` processes on 127.0.0.1, for the
Jepsen-style tests: start, SIGKILL, SIGSTOP/SIGCONT, restart members; find the leader; replay
the chain from any member."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from veil.client.ledger_client import LedgerClient
from veil.crypto.sign import SigningKey
from veil.devnet.ledger import load_faucet_key, make_cluster_genesis
from veil.devnet.specs import free_port
from veil.errors import VeilError
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.chain import Replayer
from veil.ledger.genesis import Genesis
from veil.ledger.params import Params


class Member:
    def __init__(self, data: Path, raft: str, api_port: int) -> None:
        self.data = data
        self.raft = raft
        self.port = api_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.args: list[str] = []

    def start(self, wait: bool = True) -> None:
        (self.data / "node.json").unlink(missing_ok=True)
        log = open(self.data / "node.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(self.data),
             "--listen", f"127.0.0.1:{self.port}", "--role", "validator", *self.args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        if wait:
            self.wait_started()

    def wait_started(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while not (self.data / "node.json").exists():
            assert self.proc.poll() is None, (self.data / "node.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "validator did not start"
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.proc.wait(timeout=30)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def node_id(self) -> bytes:
        from veil.crypto.sign import node_id
        from veil.node.identity import load_or_create

        return node_id(load_or_create(self.data / "identity.key").public_key)

    @property
    def key(self) -> SigningKey:
        from veil.node.identity import load_or_create

        return load_or_create(self.data / "identity.key")

    @property
    def endpoint(self) -> tuple[str, int, bytes]:
        return ("127.0.0.1", self.port, self.node_id)


class ClusterUnderTest:
    def __init__(self, root: Path, n: int = 3, params: Params | None = None, **genesis: object) -> None:
        self.root = root
        self.members: list[Member] = []
        specs = []
        for i in range(n):
            d = root / f"v{i}"
            d.mkdir(parents=True)
            m = Member(d, f"127.0.0.1:{free_port()}", free_port())
            self.members.append(m)
            specs.append((d, m.raft, f"127.0.0.1:{m.port}"))
        self.genesis: Genesis = make_cluster_genesis(specs, params, **genesis)  # type: ignore[arg-type]
        self.faucet = load_faucet_key(self.members[0].data)

    def start(self) -> None:
        for m in self.members:
            m.start(wait=False)
        for m in self.members:
            m.wait_started()
        self.wait_leader()

    def stop(self) -> None:
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                try:
                    m.proc.send_signal(signal.SIGCONT)
                    m.proc.terminate()
                    m.proc.wait(timeout=20)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    m.proc.kill()
                    m.proc.wait()

    def client(self, members: list[Member] | None = None, timeout: float = 30.0) -> LedgerClient:
        return LedgerClient([m.endpoint for m in (members or self.members)], self.genesis.hash, timeout)

    def one(self, m: Member) -> LedgerClient:
        return LedgerClient([m.endpoint], self.genesis.hash, timeout=10)

    def wait_leader(self, timeout: float = 20.0) -> Member:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if not m.alive:
                    continue
                try:
                    c = self.one(m)
                    st = c.cluster(0)
                    c.close()
                except VeilError:
                    continue
                if st["role"] == "leader" and st["quorum"]:
                    return m
            assert time.monotonic() < deadline, "no leader elected"
            time.sleep(0.1)

    def wait_height(self, m: Member, height: int, timeout: float = 30.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self.one(m)
                info = c.info()
                c.close()
                if int(info["height"]) >= height and int(info["final"]) >= height:
                    return info
            except VeilError:
                pass
            assert time.monotonic() < deadline, f"{m.data.name} did not reach final height {height}"
            time.sleep(0.1)

    def replay(self, m: Member) -> Replayer:
        """Replay member ``m``'s chain up to its final height, checking everything."""
        c = self.one(m)
        try:
            g = c.genesis()
            r = Replayer(g)
            final = int(c.info()["final"])
            for h in range(1, final + 1):
                blk = c.block(h)
                assert blk is not None
                r.apply_block(*blk)
            r.check_supply()
            return r
        finally:
            c.close()

    def fund(self, addrs: list[bytes], amount: int) -> None:
        c = self.client()
        try:
            for a in addrs:
                c.submit_with_nonce(self.faucet, lambda n, a=a: T.transfer(self.faucet, self.genesis.chain, n, 1, a, amount))
        finally:
            c.close()


class Load:
    """A steady load of transfers (each sender one at a time, in nonce order), recording what
    the cluster acknowledged. A submit that fails is retried with the same bytes."""

    def __init__(self, cluster: ClusterUnderTest, senders: list[SigningKey], sink: bytes, per_call: int = 20) -> None:
        self.cluster = cluster
        self.senders = senders
        self.sink = sink
        self.per_call = per_call
        self.acked: list[bytes] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in senders]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def _run(self, key: SigningKey) -> None:
        c = self.cluster.client(timeout=3)
        chain = self.cluster.genesis.chain
        nonce = 0
        try:
            while not self.stop.is_set():
                raws = [T.transfer(key, chain, nonce + i, 1, self.sink, 1) for i in range(self.per_call)]
                while True:
                    try:
                        res = c.submit_many(raws)
                        break
                    except VeilError as e:  # a dead member costs a retry, with the very same bytes
                        self.errors.append(str(e))
                        if self.stop.is_set():
                            return
                        time.sleep(0.1)
                for r in res:
                    if "id" not in r:
                        self.errors.append(f"rejected: {r}")
                        return
                    self.acked.append(r["id"])
                nonce += self.per_call
        finally:
            c.close()


def senders(n: int, tag: int) -> list[SigningKey]:
    return [SigningKey(bytes([tag, i + 1]) * 16) for i in range(n)]


def addr(k: SigningKey) -> bytes:
    return address_of(k.public_key)


def env_for(cluster: ClusterUnderTest, home: Path) -> dict[str, str]:
    eps = ",".join(f"{m.node_id.hex()}@127.0.0.1:{m.port}" for m in cluster.members)
    return {**os.environ, "VEIL_VALIDATOR": eps, "VEIL_GENESIS": cluster.genesis.hash.hex(), "VEIL_HOME": str(home)}


def node_json(m: Member) -> dict[str, object]:
    return dict(json.loads((m.data / "node.json").read_text()))
