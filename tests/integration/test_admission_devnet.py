"""Storage admission end to end (issue 18 item 10, storage side): a devnet of real node processes
whose storage nodes run `--storage-admission ticket`, and the real `veil put`:

- without a wallet, or from an account without stake, the upload is refused with one clear line
  (exit 7) and nothing is stored;
- a staked wallet signs a fresh ticket per share and the file stores and reads back;
- the account's free storage quota runs out: refused, exit 7;
- a forged ticket and a replayed one are refused by a real node (400), and store nothing;
- a refusal of a large one-shot share (before its body is read) still reaches the client."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put_json

from veil.client.network import load_network
from veil.client.wallet import Wallet, create_wallet
from veil.crypto.sign import SigningKey
from veil.devnet.ledger import DEVNET_CHAIN, faucet
from veil.format import cbor
from veil.ledger.amount import UNIT
from veil.ledger.params import Params
from veil.protocol.storage import oneshot_path, slot_path
from veil.protocol.tickets import TICKET_HEADER, make_ticket
from veil.testing.shares import fake_file

pytestmark = pytest.mark.integration

QUOTA = 300_000  # bytes per node for a fully staked account
PARAMS = Params(chain_id=DEVNET_CHAIN, storage_quota_bytes=QUOTA)
PASS = "correct horse"
SHAPE = ["-k", "2", "-n", "4", "--happy", "4"]


class Admitting(RunningDevnet):
    def wallet(self, name: str, stake: int | None = None) -> Wallet:
        w = create_wallet(self.home / f"{name}.wallet", PASS, m_cost_kib=1024)
        faucet(self.devnet, w.address, UNIT, stake=stake)
        return w

    def put_as(self, w: Wallet | None, path: Path) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_PASSPHRASE": PASS,
               "VEIL_WALLET": str(w.path) if w is not None else str(self.home / "none.wallet")}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "veil.cli.main", "put", "--json", str(path), *SHAPE], env=env,
                              capture_output=True, timeout=300)  # fmt: skip

    def shares_stored(self) -> int:
        total = 0
        for s in self.devnet.specs():
            if "storage" in s.roles:
                total += sum(1 for p in (self.devnet.node_dir(s) / "storage" / "slots").glob("*/*/*/*")
                             if p.name.isdigit())  # fmt: skip
        return total


@pytest.fixture(scope="module")
def adm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admitting]:
    home = tmp_path_factory.mktemp("veil-admission")
    d = Admitting(home / "devnet", home)
    d.net, _ = d.devnet.up(4, ["storage"], [], params=PARAMS, admission=True)
    try:
        yield d
    finally:
        d.devnet.down()


def _cap(p: subprocess.CompletedProcess[bytes]) -> str:
    return put_json(p)["read cap"]


def test_uploads_without_a_ticket_or_quota_are_refused(adm: Admitting, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(50_000))
    before = adm.shares_stored()
    r = adm.put_as(None, src)
    assert r.returncode == 7, r.stderr
    err = r.stderr.decode()
    assert "storage ticket" in err and "no wallet" in err and err.count("\n") == 1, err
    r = adm.put_as(adm.wallet("pauper", stake=0), src)  # a ticket, but no stake: no quota
    assert r.returncode == 7 and b"storage quota exceeded" in r.stderr, r.stderr
    assert adm.shares_stored() == before


def test_a_staked_wallet_stores_until_its_quota_is_used(adm: Admitting, tmp_path: Path) -> None:
    w = adm.wallet("uploader")
    files = []
    acct = subprocess.run([sys.executable, "-m", "veil.cli.main", "account"], capture_output=True, timeout=120,
                          env={**adm.env, "VEIL_WALLET": str(w.path)})  # fmt: skip
    assert b"storage:    300.0 KB free storage quota per node" in acct.stdout, acct.stdout + acct.stderr
    for i in range(2):  # each ≈ 125 kB of share per node: two fit a 300 kB quota
        src = tmp_path / f"f{i}.bin"
        src.write_bytes(os.urandom(250_000))
        r = adm.put_as(w, src)
        assert r.returncode == 0, r.stderr
        files.append((src, _cap(r)))
    for src, cap in files:
        out = tmp_path / (src.name + ".out")
        adm.veil("get", cap, "-o", str(out), check=True)
        assert out.read_bytes() == src.read_bytes()
    third = tmp_path / "f2.bin"
    third.write_bytes(os.urandom(250_000))
    before = adm.shares_stored()
    r = adm.put_as(w, third)
    assert r.returncode == 7, r.stderr
    assert b"storage quota exceeded" in r.stderr and r.stderr.count(b"\n") == 1, r.stderr
    assert adm.shares_stored() == before


def test_forged_and_replayed_tickets_are_refused(adm: Admitting) -> None:
    w = adm.wallet("direct")
    net = load_network(adm.devnet.static_network_path)
    node = next(n for n in net.nodes if "storage" in n.roles)
    c = net.client(node)
    sh = fake_file(os.urandom(16), nseg=2, seed=7)[0]

    def put(ticket: str) -> int:
        return c.request("PUT", oneshot_path(sh.si, sh.shnum), sh.oneshot(), {TICKET_HEADER: ticket}, check=False).status

    expires = int(time.time()) + 600
    forger = SigningKey.generate()
    good = make_ticket(w.key, node.node_id, sh.si, expires)
    # Forged: the victim's account named, signed by someone else's key.
    forged = make_ticket(forger, node.node_id, sh.si, expires)
    raw = cbor.decode(base64.urlsafe_b64decode(forged + "=="), 1024)
    raw["account"] = w.key.public_key
    forged = base64.urlsafe_b64encode(cbor.encode(raw)).rstrip(b"=").decode()
    assert put(forged) == 400
    assert c.call("GET", slot_path(sh.si, sh.mhash))["shares"] == []
    assert put(good) == 200
    # Replayed: the same ticket again (the share deleted meanwhile is no excuse) is refused.
    other = fake_file(sh.si, nseg=2, seed=8)[0]
    status = c.request("PUT", oneshot_path(other.si, other.shnum), other.oneshot(), {TICKET_HEADER: good},
                       check=False).status  # fmt: skip
    assert status == 400
    assert c.call("GET", slot_path(other.si, other.mhash))["shares"] == []


def test_a_refusal_before_a_large_one_shot_body_is_read_reaches_the_client(adm: Admitting, tmp_path: Path) -> None:
    """A one-shot share of ≈ 1.7 MB is refused (402) before the node reads its body; the client
    still gets the answer (not a reset), retries with a ticket, and reports the quota."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3_500_000))  # one-shot path (≤ 4 MiB), 2-of-4: shares of ≈ 1.75 MB
    r = adm.put_as(adm.wallet("big"), src)
    assert r.returncode == 7 and b"storage quota exceeded" in r.stderr, r.stderr
