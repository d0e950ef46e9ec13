"""Storage admission by ticket against real processes: a validator (`veil node run --role
validator`) holding the accounts' stake, and a storage node run with `--storage-admission ticket`.
Without a ticket, or from an account without stake, nothing is stored; a staked account stores
until its free storage quota on that node is used up (issue 18, defect 10, storage half)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storage_node import NodeProc

from veil.crypto.sign import SigningKey
from veil.devnet.ledger import make_node_genesis
from veil.devnet.manager import free_port
from veil.dht.records import decode_node_record
from veil.errors import PaymentRequiredError
from veil.format.merkle import Levels
from veil.format.share import HEADER_SIZE
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.params import Params
from veil.net.client import PeerClient
from veil.protocol.storage import (
    commit_path,
    encode_commit,
    oneshot_path,
    slot_path,
    upload_path,
    uploads_path,
)
from veil.protocol.tickets import TICKET_HEADER, make_ticket
from veil.testing.shares import FakeShare, fake_file

pytestmark = pytest.mark.integration
QUOTA = 40_000
PARAMS = Params(chain_id="admission", min_fee=1000, allowance_stake=10 * UNIT, storage_quota_bytes=QUOTA)
STAKER, PAUPER = SigningKey(bytes([11]) * 32), SigningKey(bytes([12]) * 32)


def _put(c: PeerClient, sh: FakeShare, key: SigningKey | None, node: bytes) -> int:
    headers = {TICKET_HEADER: make_ticket(key, node, sh.si, int(time.time()) + 600)} if key is not None else {}
    return c.request("PUT", oneshot_path(sh.si, sh.shnum), sh.oneshot(), headers, check=False).status


def test_uploads_need_a_ticket_within_the_quota(tmp_path: Path) -> None:
    vdir, sdir = tmp_path / "validator", tmp_path / "storage"
    vdir.mkdir()
    sdir.mkdir()
    port = free_port()
    make_node_genesis(vdir, PARAMS, faucet_amount=10**6 * UNIT, pool=10**3 * UNIT,
                      extra_mints={address_of(k.public_key): 100 * UNIT for k in (STAKER, PAUPER)},
                      api=f"127.0.0.1:{port}")  # fmt: skip
    validator = NodeProc(vdir, args=("--role", "validator"), listen=f"127.0.0.1:{port}")
    vinfo = validator.start()
    endpoint = f"{vinfo.node_id.hex()}@127.0.0.1:{port}"
    node = NodeProc(sdir, args=("--storage-admission", "ticket", "--validator", endpoint))
    try:
        from veil.client.ledger_client import LedgerClient

        ledger = LedgerClient.from_endpoint(endpoint)
        ledger.submit_with_nonce(STAKER, lambda n: T.stake(STAKER, ledger.chain, n, 1000, 10 * UNIT))
        deadline = time.monotonic() + 60
        while ledger.account(address_of(STAKER.public_key))["storage_quota"] < QUOTA:
            assert time.monotonic() < deadline, "stake never showed up"
            time.sleep(0.2)
        info = node.start()
        c = node.client()
        si = os.urandom(16)
        first = fake_file(si, nseg=3, seed=1)
        assert _put(c, first[0], None, info.node_id) == 402  # no ticket
        assert _put(c, first[0], PAUPER, info.node_id) == 402  # no stake, no quota
        assert _put(c, first[0], STAKER, os.urandom(32)) == 400  # a ticket for another node
        assert c.call("GET", slot_path(si, first[0].mhash)) == {"shares": [], "manifest": None}
        # A session is admitted by a ticket on POST /v1/uploads and charged its share file's size.
        sess = fake_file(os.urandom(16), nseg=2, seed=99)[1]
        with pytest.raises(PaymentRequiredError):
            c.call("POST", uploads_path(), sess.request.to_value())
        ticket = {TICKET_HEADER: make_ticket(STAKER, info.node_id, sess.si, int(time.time()) + 600)}
        uid = c.request("POST", uploads_path(), _cbor(sess.request.to_value()), ticket).cbor()["id"]
        c.request("PUT", upload_path(uid, 0), sess.body())
        c.request("POST", commit_path(uid), encode_commit(sess.commit))
        assert c.call("GET", slot_path(sess.si, sess.mhash))["shares"] == [1]
        r = sess.request
        used = HEADER_SIZE + r.share_len + 2 * Levels.stored_size(r.nseg)
        # One-shots until the quota is used up; the refusal is a 402 and stores nothing.
        files = [fake_file(os.urandom(16), nseg=3, seed=i)[0] for i in range(20)]
        size = len(files[0].oneshot())
        stored = 0
        for sh in files:
            status = _put(c, sh, STAKER, info.node_id)
            if status != 200:
                assert status == 402
                assert c.call("GET", slot_path(sh.si, sh.mhash))["shares"] == []
                break
            stored += 1
        assert stored == (QUOTA - used) // size and 0 < stored < len(files)
        assert _put(c, files[-1], STAKER, info.node_id) == 402
        # The account's quota is per node and per account: the other account is still refused.
        assert _put(c, files[-1], PAUPER, info.node_id) == 402
    finally:
        node.stop()
        validator.stop()


def _cbor(v: object) -> bytes:
    from veil.format import cbor

    return cbor.encode(v)


def test_admission_is_on_by_default_with_a_node_cap_and_the_node_keeps_serving(tmp_path: Path) -> None:
    """`veil node run` with no admission option admits by ticket: without --validator it does not
    start (one line, exit 2); with it, an unticketed upload (one-shot or session) is a 402 naming
    the ticket, an account past the node's own --account-quota (below its ledger quota) a 402
    naming the quota, and the node still answers and serves what it stored."""
    bare = subprocess.run([sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(tmp_path / "bare")],
                          capture_output=True, timeout=120)  # fmt: skip
    assert bare.returncode == 2 and b"--validator" in bare.stderr and b"--storage-admission open" in bare.stderr
    bad = subprocess.run([sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(tmp_path / "bare"),
                          "--storage-admission", "open", "--operator", "Bad Label"], capture_output=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and b"operator label" in bad.stderr, bad.stderr
    vdir, sdir = tmp_path / "validator", tmp_path / "storage"
    vdir.mkdir()
    sdir.mkdir()
    port = free_port()
    make_node_genesis(vdir, PARAMS, faucet_amount=10**6 * UNIT, pool=10**3 * UNIT,
                      extra_mints={address_of(STAKER.public_key): 100 * UNIT}, api=f"127.0.0.1:{port}")  # fmt: skip
    validator = NodeProc(vdir, args=("--role", "validator"), listen=f"127.0.0.1:{port}")
    vinfo = validator.start()
    endpoint = f"{vinfo.node_id.hex()}@127.0.0.1:{port}"
    cap = QUOTA // 2  # the node's own bound on one account, below what the stake buys (QUOTA)
    node = NodeProc(sdir, args=("--validator", endpoint, "--account-quota", str(cap), "--operator", "acme"))
    try:
        from veil.client.ledger_client import LedgerClient

        ledger = LedgerClient.from_endpoint(endpoint)
        ledger.submit_with_nonce(STAKER, lambda n: T.stake(STAKER, ledger.chain, n, 1000, 10 * UNIT))
        deadline = time.monotonic() + 60
        while ledger.account(address_of(STAKER.public_key))["storage_quota"] < QUOTA:
            assert time.monotonic() < deadline, "stake never showed up"
            time.sleep(0.2)
        info = node.start()
        c = node.client()
        sh = fake_file(os.urandom(16), nseg=3, seed=5)[0]
        r = c.request("PUT", oneshot_path(sh.si, sh.shnum), sh.oneshot(), check=False)
        assert r.status == 402 and b"storage ticket" in r.body, r.body
        sess = fake_file(os.urandom(16), nseg=2, seed=6)[1]
        r = c.request("POST", uploads_path(), _cbor(sess.request.to_value()), check=False)
        assert r.status == 402 and b"storage ticket" in r.body, r.body
        files = [fake_file(os.urandom(16), nseg=3, seed=10 + i)[0] for i in range(20)]
        size = len(files[0].oneshot())
        statuses = [_put(c, f, STAKER, info.node_id) for f in files]
        stored = statuses.count(200)
        assert stored == cap // size and statuses == [200] * stored + [402] * (len(files) - stored), statuses
        over = c.request("PUT", oneshot_path(files[-1].si, files[-1].shnum), files[-1].oneshot(),
                         {TICKET_HEADER: make_ticket(STAKER, info.node_id, files[-1].si, int(time.time()) + 600)},
                         check=False)  # fmt: skip
        assert over.status == 402 and b"storage quota exceeded" in over.body, over.body
        # Still serving: its status, and every share it admitted. The status carries the node's
        # signed record with the operator it declared (`--operator`), which peers verify.
        st = c.call("GET", "/v1/node")
        assert "storage" in st["roles"] and st["operator"] == "acme"
        rec = decode_node_record(st["record"], time.time())
        assert rec.node_id == info.node_id and rec.operator == "acme"
        for f in files[:stored]:
            assert c.call("GET", slot_path(f.si, f.mhash))["shares"] == [f.shnum]
    finally:
        node.stop()
        validator.stop()
