"""Storage admission by ticket against real processes: a validator (`veil node run --role
validator`) holding the accounts' stake, and a storage node run with `--storage-admission ticket`.
Without a ticket, or from an account without stake, nothing is stored; a staked account stores
until its free storage quota on that node is used up (issue 18, defect 10, storage half)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from storage_node import NodeProc

from veil.crypto.sign import SigningKey
from veil.devnet.ledger import make_node_genesis
from veil.devnet.manager import free_port
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
