"""Jepsen-style tests of the validator cluster: three real validator processes (Raft through
PySyncObj) over TLS on 127.0.0.1; members are SIGKILLed, SIGSTOPped, restarted; clients fail
over by themselves; every acknowledged transfer must be in the chain exactly once and every
member must replay to the same state."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_cluster import ClusterUnderTest, Load, addr, env_for, senders

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, UnavailableError
from veil.ledger import tx as T
from veil.ledger.amount import UNIT
from veil.ledger.params import Params
from veil.ledger.rules_stake import validator_change_message

pytestmark = pytest.mark.integration
PARAMS = Params(chain_id="jepsen", min_fee=1)
SINK = addr(SigningKey(b"\x5a" * 32))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterUnderTest]:
    c = ClusterUnderTest(tmp_path_factory.mktemp("cluster"), 3, PARAMS,
                         extra_mints={addr(k): 1000 * UNIT for k in senders(6, 1) + senders(2, 2) + senders(4, 3)})  # fmt: skip
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _all_once(cluster: ClusterUnderTest, acked: list[bytes]) -> None:
    """Every acknowledged transaction is in the chain exactly once, on every member."""
    c = cluster.client()
    try:
        heights = [c.tx(t)["height"] for t in acked[:: max(1, len(acked) // 200)] + acked[-20:]]
        assert all(isinstance(h, int) for h in heights)
    finally:
        c.close()
    assert len(set(acked)) == len(acked)


def test_leader_sigkill_under_load(cluster: ClusterUnderTest) -> None:
    before = cluster.client().account(SINK)["balance"]
    load = Load(cluster, senders(6, 1), SINK)
    load.start()
    time.sleep(1.5)
    leader = cluster.wait_leader()
    n_before = len(load.acked)
    leader.signal(signal.SIGKILL)
    t0 = time.monotonic()
    new = cluster.wait_leader()
    assert new is not leader
    while len(load.acked) < n_before + 200:  # the load goes on through the new leader
        assert time.monotonic() - t0 < 30, f"load stalled after the leader died: {load.errors[-3:]}"
        time.sleep(0.05)
    load.finish()
    assert not [e for e in load.errors if e.startswith("rejected")]
    leader.start()
    c = cluster.client()
    info = c.info()
    for m in cluster.members:
        cluster.wait_height(m, int(info["height"]))
    # Exactly once: the sink got one unit per acknowledged transfer, no more (a retried batch
    # is acknowledged again, never applied twice).
    assert c.account(SINK)["balance"] - before == len(load.acked)
    _all_once(cluster, load.acked)
    hashes = set()
    for m in cluster.members:
        r = cluster.replay(m)  # certificates, signatures, rules, state hash, supply on every member
        hashes.add((r.height, r.state.state_hash))
    assert len(hashes) == 1
    c.close()


def test_follower_sigstop_catches_up(cluster: ClusterUnderTest) -> None:
    leader = cluster.wait_leader()
    follower = next(m for m in cluster.members if m is not leader)
    follower.signal(signal.SIGSTOP)
    try:
        load = Load(cluster, senders(2, 2), SINK)
        load.start()
        time.sleep(5.0)  # a stopped member costs a client one timeout, then it fails over
        load.finish()
        assert len(load.acked) > 100, load.errors[-3:]
    finally:
        follower.signal(signal.SIGCONT)
    c = cluster.one(leader)
    height = int(c.info()["height"])
    c.close()
    cluster.wait_height(follower, height)
    states = {(cluster.replay(m).state.state_hash) for m in (leader, follower)}
    assert len(states) == 1


def test_double_spend_through_two_validators_commits_once(cluster: ClusterUnderTest) -> None:
    k = SigningKey(b"\x77" * 32)
    cluster.fund([addr(k)], 10 * UNIT)
    a, b = cluster.members[0], cluster.members[1]
    ca, cb = cluster.one(a), cluster.one(b)
    nonce = ca.next_nonce(addr(k))
    chain = cluster.genesis.chain
    # The same nonce spends the whole balance twice, to two payees, through two validators at once.
    bal = ca.account(addr(k))["balance"]
    t1 = T.transfer(k, chain, nonce, 1, addr(SigningKey(b"\x01" * 32)), bal - 1)
    t2 = T.transfer(k, chain, nonce, 1, addr(SigningKey(b"\x02" * 32)), bal - 1)
    out: dict[str, object] = {}

    def send(name: str, c: object, raw: bytes) -> None:
        try:
            out[name] = c.submit(raw)  # type: ignore[attr-defined]
        except LedgerError as e:
            out[name] = e

    th = [threading.Thread(target=send, args=("a", ca, t1)), threading.Thread(target=send, args=("b", cb, t2))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    ok = [v for v in out.values() if isinstance(v, bytes)]
    refused = [v for v in out.values() if isinstance(v, LedgerError)]
    assert len(ok) == 1 and len(refused) == 1 and refused[0].code in ("bad_nonce", "insufficient_funds")
    assert ca.account(addr(k))["balance"] == 0 and ca.account(addr(k))["nonce"] == nonce + 1
    ca.close()
    cb.close()


def test_majority_down_writes_fail_clearly_reads_answer_stale(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    leader = cluster.wait_leader()
    others = [m for m in cluster.members if m is not leader]
    others[0]
    for m in (leader, others[1]):
        m.signal(signal.SIGKILL)
    try:
        env = env_for(cluster, tmp_path)
        w = tmp_path / "w"
        subprocess.run([sys.executable, "-m", "veil.cli.main", "wallet", "create", "--wallet", str(w)],
                       env={**env, "VEIL_PASSPHRASE": "p"}, check=True, capture_output=True)  # fmt: skip
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", "wallet", "send", str(addr(SigningKey(b"\x03" * 32)).hex()),
                            "1", "--wallet", str(w)], env={**env, "VEIL_PASSPHRASE": "p"}, capture_output=True, text=True)  # fmt: skip
        assert p.returncode != 0
        c = cluster.client()
        k = senders(6, 1)[0]
        with pytest.raises(UnavailableError) as e:
            c.submit(T.transfer(k, cluster.genesis.chain, 10**6, 1, SINK, 1))
        assert str(e.value) == "ledger unavailable: 1 of 3 validators reachable, 2 needed"
        acct = c.account(SINK)  # reads still answer from the one member left ...
        assert acct["balance"] > 0 and c.last_stale  # ... marked possibly stale
        c.close()
        st = subprocess.run([sys.executable, "-m", "veil.cli.main", "ledger", "status"], env=env, capture_output=True, text=True)
        assert st.returncode == 5 and "ledger unavailable: 1 of 3 validators reachable, 2 needed" in st.stderr
        assert "down" in st.stdout
    finally:
        for m in (leader, others[1]):
            m.start(wait=False)
        for m in (leader, others[1]):
            m.wait_started()
        cluster.wait_leader()


def test_all_members_sigkilled_at_once_lose_nothing_acknowledged(cluster: ClusterUnderTest) -> None:
    load = Load(cluster, senders(4, 3), SINK)
    load.start()
    time.sleep(1.5)
    for m in cluster.members:  # all at once, mid-load
        m.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    for m in cluster.members:
        m.proc.wait()  # type: ignore[union-attr]
    load.finish()
    acked = list(load.acked)
    assert len(acked) > 100
    cluster.start()
    c = cluster.client()
    _all_once(cluster, acked)  # every acknowledged transfer survived
    height = int(c.info()["height"])
    hashes = {(cluster.wait_height(m, height)["state_hash"]) for m in cluster.members}
    assert len({cluster.replay(m).state.state_hash for m in cluster.members}) == 1
    assert len(hashes) >= 1
    c.close()


def test_acknowledged_means_final_across_an_expiry(cluster: ClusterUnderTest) -> None:
    """Issue 18 item 6: a channel_open acknowledged seconds before its expiry, then every member
    killed and restarted after it: the channel is there, and later nonces still work."""
    k = SigningKey(b"\x66" * 32)
    cluster.fund([addr(k)], 10 * UNIT)
    c = cluster.client()
    chain = cluster.genesis.chain
    now = int(c.info()["now"])
    txid, nonce = c.submit_with_nonce(k, lambda n: T.channel_open(k, chain, n, 1, SINK, UNIT, now + 2))
    c.close()
    for m in cluster.members:
        m.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    for m in cluster.members:
        m.proc.wait()  # type: ignore[union-attr]
    time.sleep(3)  # past the expiry while everything is down
    cluster.start()
    c = cluster.client()
    assert c.tx(txid)["status"] == "committed"
    from veil.ledger.state import channel_id

    assert c.channel(channel_id(addr(k), nonce)) is not None
    c.submit_with_nonce(k, lambda n: T.transfer(k, chain, n, 1, SINK, 1))  # the next nonce is not stuck
    c.close()


def test_membership_add_a_fourth_under_load_then_remove_one(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    from ledger_cluster import Member

    from veil.crypto.idpuzzle import DEVNET_ID_BITS
    from veil.devnet.specs import free_port
    from veil.durable import write_atomic
    from veil.node.identity import load_or_create

    chain = cluster.genesis.chain
    load = Load(cluster, senders(2, 2)[:1], SINK)
    # The newcomer: the chain's genesis and secret, its own key, and the members to learn from.
    d = tmp_path / "v3"
    (d / "ledger").mkdir(parents=True)
    for f in ("genesis.cbor", "cluster.key"):
        write_atomic(d / "ledger" / f, (cluster.members[0].data / "ledger" / f).read_bytes(), 0o600)
    new = Member(d, f"127.0.0.1:{free_port()}", free_port())
    key = load_or_create(d / "identity.key", DEVNET_ID_BITS)  # the id puzzle the node will be started with
    c = cluster.client()
    load.start()
    try:
        vset = c.validators()
        msg = validator_change_message(chain, vset.version, "add", key.public_key, new.raft, f"127.0.0.1:{new.port}")
        approvals = [(m.key.public_key, m.key.sign(msg)) for m in cluster.members[:2]]  # 2 of 3 approve
        # One approval is not enough.
        with pytest.raises(LedgerError):
            c.submit_with_nonce(cluster.faucet, lambda n: T.validator_change(
                cluster.faucet, chain, n, 1, "add", key.public_key, new.raft, f"127.0.0.1:{new.port}", approvals[:1]))  # fmt: skip
        c.submit_with_nonce(cluster.faucet, lambda n: T.validator_change(
            cluster.faucet, chain, n, 1, "add", key.public_key, new.raft, f"127.0.0.1:{new.port}", approvals))  # fmt: skip
        new.args = ["--validators", ",".join(f"{m.node_id.hex()}@127.0.0.1:{m.port}" for m in cluster.members)]
        new.start()
        cluster.members.append(new)
        height = int(c.info()["height"])
        cluster.wait_height(new, height + 2, timeout=60)  # it caught up and blocks are final with 4 members
        # Remove one of the original three (not the leader), approved by a majority of the four.
        leader = cluster.wait_leader()
        gone = next(m for m in cluster.members[:3] if m is not leader)
        vset = c.validators()
        assert len(vset.members) == 4
        msg = validator_change_message(chain, vset.version, "remove", gone.key.public_key, gone.raft, f"127.0.0.1:{gone.port}")
        approvals = [(m.key.public_key, m.key.sign(msg)) for m in cluster.members if m is not gone][:3]
        c.submit_with_nonce(cluster.faucet, lambda n: T.validator_change(
            cluster.faucet, chain, n, 1, "remove", gone.key.public_key, gone.raft, f"127.0.0.1:{gone.port}", approvals))  # fmt: skip
        time.sleep(1.5)
    finally:
        load.finish()
    assert len(load.acked) > 50
    assert len(c.validators().members) == 3
    gone.signal(signal.SIGTERM)
    cluster.members.remove(gone)
    height = int(c.info()["height"])
    for m in cluster.members:
        cluster.wait_height(m, height)
    r = cluster.replay(new)
    assert r.set_changes == 2 and r.height >= height
    c.close()
