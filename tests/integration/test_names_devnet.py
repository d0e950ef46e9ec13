"""Names on a real devnet (`veil devnet up`: three validator processes in a Raft cluster and
storage nodes over TLS): register by commit-reveal, set records, resolve with a proof checked
by the client, pay `alice.veil`, read a file of the site by name, list, subnames, and the
one-line errors for what is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet

from veil.client.wallet import Wallet, create_wallet
from veil.devnet.ledger import devnet_ledger_client, faucet
from veil.ledger.amount import UNIT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # a devnet of 13 processes on a loaded machine

PASS = "correct horse"


class NamesDevnet(RunningDevnet):
    def wallet(self, who: str, fund: int) -> Wallet:
        w = create_wallet(self.home / f"{who}.wallet", PASS, m_cost_kib=1024)
        faucet(self.devnet, w.address, fund)
        return w

    def as_user(self, w: Wallet, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_WALLET": str(w.path), "VEIL_PASSPHRASE": PASS}
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p


@pytest.fixture(scope="module")
def dn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamesDevnet]:
    home = tmp_path_factory.mktemp("veil-names")
    d = NamesDevnet(home / "devnet", home)
    d.veil("devnet", "up", "--nodes", "10", "--validators", "3", "--relays", "0", "--name-commit-wait", "2s",
           "--name-auction", "40s", "--name-year", "20d", check=True)  # a year of 20 days: `list` warns  # fmt: skip
    try:
        yield d
    finally:
        d.devnet.down()


def _one_error(p: subprocess.CompletedProcess[bytes], *words: str) -> str:
    err = p.stderr.decode().strip().splitlines()
    assert p.returncode != 0 and len(err) == 1 and err[0].startswith("veil: error: "), p.stderr
    assert all(w in err[0] for w in words), err[0]
    return err[0]


def test_register_set_resolve_pay_and_read_by_name(dn: NamesDevnet, tmp_path: Path) -> None:
    alice, bob = dn.wallet("alice", 100 * UNIT), dn.wallet("bob", 100 * UNIT)
    out = dn.as_user(alice, "name", "register", "alice").stdout.decode()
    assert "registered alice.veil" in out
    # a site folder with a file in it, published under the name
    folder = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in dn.veil("mkdir", check=True)
                                                    .stdout.decode().splitlines())}  # fmt: skip
    wcap = folder["write cap"]
    report = tmp_path / "report.pdf"
    report.write_bytes(os.urandom(300_000))
    rc = dn.veil("put", "-q", str(report), check=True).stdout.decode().strip()
    dn.veil("mkdir", wcap + "/docs", check=True)
    dn.veil("ln", rc, wcap + "/docs/report.pdf", check=True)
    dn.as_user(alice, "name", "set", "alice", "site", wcap)
    dn.as_user(alice, "name", "set", "alice", "wallet", alice.address_text)
    dn.as_user(alice, "name", "set", "alice", "text", "email", "alice@example.org")

    res = json.loads(dn.veil("name", "resolve", "alice.veil", "--json", check=True).stdout)
    assert res["status"] == "active" and res["owner"] == alice.address_text
    assert res["records"]["site"].startswith("veil:fr1:")  # the write cap was never published
    assert res["records"]["wallet"] == alice.address_text and res["records"]["text:email"] == "alice@example.org"

    c = devnet_ledger_client(dn.devnet)
    try:
        before = c.account(alice.address)["balance"]
        sent = dn.as_user(bob, "wallet", "send", "alice.veil", "5")
        assert b"sent 5" in sent.stdout
        assert c.account(alice.address)["balance"] == before + 5 * UNIT
    finally:
        c.close()

    got = tmp_path / "got.pdf"
    dn.veil("get", "-q", "alice.veil/docs/report.pdf", "-o", str(got), check=True)
    assert got.read_bytes() == report.read_bytes()
    assert "docs" in dn.veil("ls", "alice.veil/", check=True).stdout.decode()
    assert "report.pdf" in dn.veil("ls", "alice.veil/docs", check=True).stdout.decode()

    listed = dn.as_user(alice, "name", "list")
    assert "alice.veil" in listed.stdout.decode() and "expires" in listed.stdout.decode()
    assert b"warning: alice.veil expires in 20 days" in listed.stderr

    # a subname: bob controls blog.alice.veil, and only it
    dn.as_user(alice, "name", "sub", "alice", "blog", "--owner", bob.address_text)
    dn.as_user(bob, "name", "set", "blog.alice", "text", "by", "bob")
    sub = json.loads(dn.veil("name", "resolve", "blog.alice.veil", "--json", check=True).stdout)
    assert sub["owner"] == bob.address_text and sub["records"] == {"text:by": "bob"}
    _one_error(dn.as_user(bob, "name", "set", "alice", "text", "x", "y", check=False), "only the owner")

    # refusals are one clear line each
    _one_error(dn.as_user(bob, "name", "register", "alice", check=False), "taken")
    _one_error(dn.veil("name", "resolve", "bad_name!"), "bad_name!")
    _one_error(dn.as_user(bob, "wallet", "send", "nobody-here.veil", "1", check=False), "unregistered")
    _one_error(dn.veil("get", "alice.veil", "-o", str(tmp_path / "x")), "is a site")
    _one_error(dn.as_user(bob, "name", "register", "abc", check=False), "auction")


def test_short_name_auction(dn: NamesDevnet) -> None:
    carol, dave = dn.wallet("carol", 100 * UNIT), dn.wallet("dave", 100 * UNIT)
    assert "16 VEIL" in dn.veil("name", "price", "xyz", check=True).stdout.decode()
    dn.as_user(carol, "name", "bid", "xyz", "16")
    _one_error(dn.as_user(dave, "name", "bid", "xyz", "16.5", check=False), "at least 16.8")
    dn.as_user(dave, "name", "bid", "xyz", "16.8")
    c = devnet_ledger_client(dn.devnet)
    try:
        assert c.account(carol.address)["balance"] == 100 * UNIT - c.genesis().params.min_fee  # refunded; only the bid paid a fee
        burned = c.info()["burned"]
        assert "16.8 VEIL by " + dave.address_text in dn.veil("name", "auction", "xyz", check=True).stdout.decode()

        deadline = time.monotonic() + 300
        while True:  # wait for ledger time to pass the auction's end
            p = dn.as_user(carol, "name", "claim", "xyz", check=False)
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            assert b"runs until" in p.stderr, p.stderr
            time.sleep(1)
        assert p.returncode == 0, p.stderr
        assert c.info()["burned"] == burned + 16_800_000_000
    finally:
        c.close()
    res = json.loads(dn.veil("name", "resolve", "xyz.veil", "--json", check=True).stdout)
    assert res["status"] == "active" and res["owner"] == dave.address_text


def test_ledger_verify_recomputes_the_names_roots(dn: NamesDevnet) -> None:
    p = dn.veil("ledger", "verify", check=True)
    out = p.stdout.decode()
    assert out.startswith("verified ") and "unchecked" not in out, out
