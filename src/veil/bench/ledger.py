"""`veil bench ledger`: the Bitcache ledger's speed against this machine's Ed25519 ceiling.

Measured in one run:
  * the ceiling: libsodium Ed25519 verifications per second on one core (and on all cores);
  * signed transfers per second applied into blocks by the ledger machine alone, in this process
    (SQLite with synchronous=FULL, one block per log entry of ``--batch`` transfers);
  * the same over HTTPS against a real `veil node run --role validator` process;
  * cheque verifications per second in a node's channel book (memory store, and durable);
  * state size and account-lookup time with ``--accounts`` accounts in SQLite.
Signing is done before timing starts: clients sign, the validator verifies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from veil.client.ledger_client import LedgerClient
from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.crypto.sigbatch import cpu_count, verify_fast, verify_many
from veil.crypto.sign import SigningKey
from veil.devnet.ledger import make_cluster_genesis
from veil.devnet.specs import free_port
from veil.errors import VeilError
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.channelbook import ChannelBook, MemoryChequeStore
from veil.ledger.cheque import make_cheque
from veil.ledger.cheque_store import SqliteChequeStore
from veil.ledger.genesis import Genesis, make_genesis
from veil.ledger.params import Params
from veil.ledger.state import Channel
from veil.ledger.store import LedgerStore
from veil.node.validator_core import LedgerMachine, txs_entry

CHAIN = "bench"


def _ceiling(n: int) -> dict[str, float]:
    k = SigningKey.generate()
    msg = os.urandom(200)
    sig = k.sign(msg)
    pk = k.public_key
    one = 0.0
    for _ in range(3):  # best of three: a shared machine's noise only ever lowers a rate
        t = time.perf_counter()
        for _ in range(n):
            verify_fast(pk, msg, sig)
        one = max(one, n / (time.perf_counter() - t))
    items = [(pk, msg, sig)] * (n * 2)
    t = time.perf_counter()
    verify_many(items)
    allc = len(items) / (time.perf_counter() - t)
    return {"verify_per_s_one_core": one, "verify_per_s_all_cores": allc, "cores": cpu_count()}


def _signed_transfers(n: int, senders: list[SigningKey], to: bytes, chain: str) -> list[bytes]:
    per = -(-n // len(senders))
    out = []
    for j in range(per):
        for s in senders:
            out.append(txm.transfer(s, chain, j, 1, to, 1))
    return out[:n]


def _core_rate(tmp: Path, raws: list[bytes], g: Genesis, batch: int) -> dict[str, float]:
    """The ledger machine alone (no Raft, no HTTP): log entries of ``batch`` transfers applied."""
    store = LedgerStore(tmp / "core.db")
    store.init_genesis(g)
    m = LedgerMachine(store, SigningKey.generate())
    t = time.perf_counter()
    for i in range(0, len(raws), batch):
        m.apply(i // batch + 1, txs_entry(int(time.time()), raws[i : i + batch]))
        if any(v.error is not None for v in m.verdicts[i // batch + 1]):
            raise RuntimeError("bench transaction rejected")
    el = time.perf_counter() - t
    height = store.head()[0]
    store.close()
    return {"tx_per_s": len(raws) / el, "blocks": height, "seconds": el}


class _Cluster:
    """``n`` real validator processes (`veil node run --role validator`) sharing one genesis."""

    def __init__(self, tmp: Path, n: int, mints: dict[bytes, int]) -> None:
        self.members = []
        for i in range(n):
            d = tmp / f"v{n}-{i}"
            d.mkdir(parents=True)
            self.members.append((d, f"127.0.0.1:{free_port()}", free_port()))
        self.genesis = make_cluster_genesis([(d, r, f"127.0.0.1:{p}") for d, r, p in self.members],
                                            Params(chain_id=CHAIN), extra_mints=mints)  # fmt: skip
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * n

    def start(self, i: int) -> None:
        d, _, port = self.members[i]
        (d / "node.json").unlink(missing_ok=True)
        log = open(d / "node.log", "ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(d), "--listen", f"127.0.0.1:{port}",
             "--role", "validator", "--id-bits", str(DEVNET_ID_BITS)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()

    def up(self) -> None:
        for i in range(len(self.members)):
            self.start(i)
        deadline = time.monotonic() + 60
        for d, _, _ in self.members:
            while not (d / "node.json").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("validator did not start: " + (d / "node.log").read_text()[-500:])
                time.sleep(0.05)
        self.leader()

    def endpoint(self, i: int) -> tuple[str, int, bytes]:
        d, _, port = self.members[i]
        return ("127.0.0.1", port, bytes.fromhex(json.loads((d / "node.json").read_text())["node_id"]))

    def client(self, timeout: float = 120) -> LedgerClient:
        return LedgerClient([self.endpoint(i) for i in range(len(self.members)) if self.procs[i] is not None],
                            self.genesis.hash, timeout)  # fmt: skip

    def leader(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(len(self.members)):
                if self.procs[i] is None:
                    continue
                try:
                    c = LedgerClient([self.endpoint(i)], self.genesis.hash, 2)
                    st = c.cluster(0)
                    c.close()
                    if st["role"] == "leader" and st["quorum"]:
                        return i
                except VeilError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("no leader")

    def kill(self, i: int) -> None:
        p = self.procs[i]
        if p is not None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            self.procs[i] = None

    def down(self) -> None:
        for i, p in enumerate(self.procs):
            if p is not None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                self.procs[i] = None


def _throughput(cl: _Cluster, senders: list[SigningKey], per_sender: int, batch: int, threads: int) -> float:
    """All cores busy: ``threads`` clients submit signed transfers in batches; transfers/s committed."""
    chain = cl.genesis.chain
    sink = address_of(SigningKey.generate().public_key)
    groups = [senders[i::threads] for i in range(threads)]
    work = [[txm.transfer(s, chain, n, 1, sink, 1) for n in range(per_sender) for s in grp] for grp in groups]

    def run(raws: list[bytes]) -> int:
        c = cl.client()
        try:
            for i in range(0, len(raws), batch):
                res = c.submit_many(raws[i : i + batch])
                if any("id" not in r for r in res):
                    raise RuntimeError(f"bench transaction rejected: {next(r for r in res if 'id' not in r)}")
        finally:
            c.close()
        return len(raws)

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        total = sum(ex.map(run, work))
    return total / (time.perf_counter() - t)


def _latency(cl: _Cluster, senders: list[SigningKey], rate: float, seconds: float) -> dict[str, float]:
    """Submit-to-commit times of small batches sent at ``rate`` transfers/s (half the measured load)."""
    chain = cl.genesis.chain
    sink = address_of(SigningKey.generate().public_key)
    lat: list[float] = []
    per_call = 20
    interval = per_call / max(rate, 1.0)
    threads = 4
    base = 10**6  # nonces after the throughput run's
    lock = threading.Lock()

    def run(grp: list[SigningKey], k: int) -> None:
        c = cl.client()
        nonces = {s.public_key: c.next_nonce(address_of(s.public_key)) for s in grp}
        start = time.perf_counter() + k * interval
        j = 0
        try:
            while time.perf_counter() - start < seconds:
                s = grp[j % len(grp)]
                raws = [txm.transfer(s, chain, nonces[s.public_key] + i, 1, sink, 1) for i in range(per_call)]
                nonces[s.public_key] += per_call
                due = start + j * interval * threads
                if due > time.perf_counter():
                    time.sleep(due - time.perf_counter())
                t0 = time.perf_counter()
                c.submit_many(raws)
                with lock:
                    lat.append(time.perf_counter() - t0)
                j += 1
        finally:
            c.close()

    _ = base
    groups = [senders[i::threads] for i in range(threads)]
    ths = [threading.Thread(target=run, args=(g, k)) for k, g in enumerate(groups)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    lat.sort()
    return {"p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "calls": len(lat), "rate": rate}  # fmt: skip


def _failover(cl: _Cluster, key: SigningKey) -> float:
    """Seconds from SIGKILL of the leader to the first transfer committed after it."""
    chain = cl.genesis.chain
    sink = address_of(SigningKey.generate().public_key)
    c = cl.client(timeout=3)
    nonce = c.next_nonce(address_of(key.public_key))
    c.submit(txm.transfer(key, chain, nonce, 1, sink, 1))
    nonce += 1
    leader = cl.leader()
    cl.kill(leader)
    t0 = time.monotonic()
    while True:
        try:
            c.submit(txm.transfer(key, chain, nonce, 1, sink, 1))
            break
        except VeilError:
            time.sleep(0.01)
        if time.monotonic() - t0 > 60:
            raise RuntimeError("no commit within 60 s of the leader's death")
    el = time.monotonic() - t0
    c.close()
    return el


def _cluster_figures(tmp: Path, n: int, txs: int, batch: int, failover: bool) -> dict[str, float]:
    senders = [SigningKey.generate() for _ in range(64)]
    cl = _Cluster(tmp, n, {address_of(s.public_key): 10**15 for s in senders})
    try:
        cl.up()
        out: dict[str, float] = {}
        out["tx_per_s"] = _throughput(cl, senders[:48], max(1, txs // 48), batch, 4)
        lat = _latency(cl, senders[48:], out["tx_per_s"] / 2, 4.0)
        out.update(lat)
        if failover:
            out["failover_s"] = _failover(cl, senders[48])
        return out
    finally:
        cl.down()


def _cheque_rate(tmp: Path, n: int) -> dict[str, float]:
    payer, payee = SigningKey.generate(), SigningKey.generate()
    params = Params(chain_id=CHAIN)
    cid = os.urandom(32)
    ch = Channel(address_of(payer.public_key), payer.public_key, address_of(payee.public_key), 10**15, 2**40)
    up = address_of(SigningKey.generate().public_key)
    cheques = [make_cheque(payer, CHAIN, cid, i + 1, (i + 1) * 1000, 0, (i + 1) * 65536, {up: (i + 1) * 1000}).raw
               for i in range(n)]  # fmt: skip
    out: dict[str, float] = {}
    for name, store in (("memory", MemoryChequeStore()), ("sqlite", SqliteChequeStore(tmp / "cheques.db"))):
        book = ChannelBook(params, ch.payee, store)
        book.track(cid, ch)
        m = n if name == "memory" else min(n, 2000)
        t = time.perf_counter()
        for raw in cheques[:m]:
            book.accept(raw, 0)
        out[f"{name}_per_s"] = m / (time.perf_counter() - t)
    # A node serves many downloads at once: one channel per thread, all cores.
    workers = cpu_count()
    books = []
    for _ in range(workers):
        cid_w = os.urandom(32)
        b = ChannelBook(params, ch.payee, MemoryChequeStore())
        b.track(cid_w, ch)
        per = [make_cheque(payer, CHAIN, cid_w, i + 1, (i + 1) * 1000, 0, 0, {up: (i + 1) * 1000}).raw
               for i in range(n // workers)]  # fmt: skip
        books.append((b, per))

    def run(item: tuple[ChannelBook, list[bytes]]) -> None:
        for raw in item[1]:
            item[0].accept(raw, 0)

    with ThreadPoolExecutor(workers) as ex:
        t = time.perf_counter()
        list(ex.map(run, books))
        out["memory_all_cores_per_s"] = sum(len(p) for _, p in books) / (time.perf_counter() - t)
    return out


def _state(tmp: Path, accounts: int, lookups: int) -> dict[str, float]:
    store = LedgerStore(tmp / "state.db", synchronous="NORMAL")
    addrs: list[bytes] = []
    t = time.perf_counter()
    chunk = 200_000
    for start in range(0, accounts, chunk):
        rows = [(os.urandom(32), 10**9, 0, 0, 0, 0, 0, 0, 0) for _ in range(min(chunk, accounts - start))]
        addrs.extend(r[0] for r in random.sample(rows, min(len(rows), max(1, lookups // 5))))
        store.load_accounts(rows)
    load = time.perf_counter() - t
    size = store.size_bytes()
    store.close()
    store = LedgerStore(tmp / "state.db")
    sample = [random.choice(addrs) for _ in range(lookups)]
    t = time.perf_counter()
    for a in sample:
        if store.get_account(a) is None:
            raise RuntimeError("lost an account")
    per = (time.perf_counter() - t) / lookups
    store.close()
    return {"accounts": accounts, "bytes": size, "bytes_per_account": size / accounts, "lookup_us": per * 1e6,
            "load_s": load}  # fmt: skip


@click.command("ledger")
@click.option("--validators", default=3, show_default=True, type=click.IntRange(1, 9), help="Cluster size to measure.")
@click.option("--txs", default=30_000, show_default=True, help="Signed transfers pushed through each cluster.")
@click.option("--accounts", default=1_000_000, show_default=True, help="Accounts in the state-size test.")
@click.option("--cheques", default=20_000, show_default=True)
@click.option("--batch", default=500, show_default=True, help="Transactions per submit call.")
@click.option("--quick", is_flag=True, help="Small sizes, for a smoke test.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ledger_cmd(validators: int, txs: int, accounts: int, cheques: int, batch: int, quick: bool, as_json: bool) -> None:
    """Ed25519 ceiling; transfers/s into blocks on one validator and on the cluster (real processes),
    p50/p99 submit-to-commit at half load, leader failover time; cheque checks/s; state size."""
    if quick:
        txs, cheques, batch, accounts = min(txs, 2000), min(cheques, 500), min(batch, 200), min(accounts, 20_000)
    with tempfile.TemporaryDirectory(prefix="veil-bench-ledger-") as d:
        tmp = Path(d)
        res: dict[str, Any] = {"ceiling": _ceiling(2000 if quick else 20_000)}
        one = res["ceiling"]["verify_per_s_one_core"]
        senders = [SigningKey.generate() for _ in range(min(1000, max(10, txs // 50)))]
        g = make_genesis(Params(chain_id=CHAIN), int(time.time()), SigningKey.generate().public_key,
                         {address_of(s.public_key): 10**15 for s in senders}, 0)  # fmt: skip
        raws = _signed_transfers(txs, senders, address_of(SigningKey.generate().public_key), g.chain)
        res["machine"] = _core_rate(tmp, raws, g, batch)
        res["machine"]["ratio_to_one_core_ceiling"] = res["machine"]["tx_per_s"] / one
        res["single"] = _cluster_figures(tmp, 1, txs, batch, failover=False)
        res["cluster"] = _cluster_figures(tmp, validators, txs, batch, failover=validators >= 3)
        res["cluster"]["validators"] = validators
        res["cluster"]["ratio_to_single"] = res["cluster"]["tx_per_s"] / res["single"]["tx_per_s"]
        res["cheques"] = _cheque_rate(tmp, cheques)
        res["cheques"]["ratio_to_one_core_ceiling"] = res["cheques"]["memory_per_s"] / one
        res["cheques"]["all_cores_ratio_to_all_cores_ceiling"] = (
            res["cheques"]["memory_all_cores_per_s"] / res["ceiling"]["verify_per_s_all_cores"]
        )
        res["state"] = _state(tmp, accounts, 2000 if quick else 100_000)
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
        return
    c = res["ceiling"]
    click.echo(f"Ed25519 verify ceiling : {c['verify_per_s_one_core']:>10,.0f}/s on one core, "
               f"{c['verify_per_s_all_cores']:,.0f}/s on {c['cores']} cores")  # fmt: skip
    v = res["machine"]
    click.echo(f"ledger machine alone   : {v['tx_per_s']:>10,.0f}/s ({v['ratio_to_one_core_ceiling']:.0%} of one core's "
               f"verify ceiling; {v['blocks']} blocks, SQLite synchronous=FULL)")  # fmt: skip
    s1, cl = res["single"], res["cluster"]
    click.echo(f"one validator (Raft)   : {s1['tx_per_s']:>10,.0f}/s; submit-to-commit at half load "
               f"p50 {s1['p50_ms']:.0f} ms, p99 {s1['p99_ms']:.0f} ms")  # fmt: skip
    click.echo(f"{cl['validators']}-validator cluster    : {cl['tx_per_s']:>10,.0f}/s = {cl['ratio_to_single']:.0%} of one "
               f"validator (target >= 50% and >= 5,000/s); p50 {cl['p50_ms']:.0f} ms, p99 {cl['p99_ms']:.0f} ms "
               f"(target <= 100 ms)")  # fmt: skip
    if "failover_s" in cl:
        click.echo(f"leader failover        : {cl['failover_s']:.2f} s from SIGKILL to the next commit (target <= 2 s)")
    q = res["cheques"]
    click.echo(f"cheque checks          : {q['memory_per_s']:>10,.0f}/s on one thread ({q['ratio_to_one_core_ceiling']:.0%} of ceiling); "
               f"{q['memory_all_cores_per_s']:,.0f}/s on all cores ({q['all_cores_ratio_to_all_cores_ceiling']:.0%} of that ceiling); "
               f"{q['sqlite_per_s']:,.0f}/s persisted with fsync")  # fmt: skip
    s = res["state"]
    click.echo(f"state                  : {s['accounts']:,} accounts in {s['bytes'] / 1e6:,.1f} MB "
               f"({s['bytes_per_account']:.0f} B each), lookup {s['lookup_us']:.1f} µs")  # fmt: skip
    click.echo("(all processes share this machine's cores, and other work runs on it: figures are indicative)")
