"""Churn and repair on a CHARGING devnet that also admits storage only by ticket (issue 18 items
10 and 12): every storage node charges for downloads and takes shares only with a storage ticket
within the uploader's quota. Files are uploaded with a staked wallet (tickets), 30% of the nodes
are killed, wiped and replaced (the new ones charge and admit too), and the nodes' own repairers
— paying the charging holders from each node's own account and signing tickets for the new
holders with its key — bring every file back to n healthy shares, byte-identical. The repairers'
payments are channels on the ledger, opened by the repairing nodes' accounts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from churn_helpers import ChurnDevnet, assert_restored, wait_for
from devnet_helpers import put_json

from veil.client.check import CheckReport, check
from veil.client.ledger_client import LedgerClient
from veil.client.network import load_network
from veil.client.payer import Payer
from veil.client.wallet import Wallet, create_wallet
from veil.devnet.ledger import DEVNET_CHAIN, devnet_ledger_client, faucet
from veil.format.caps import parse_verify_cap
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.params import Params
from veil.net.client import PeerClient
from veil.node.identity import load_or_create

pytestmark = pytest.mark.integration

NODES = 10
FILES = 4
PASS = "correct horse"
# A small free allowance, so checks and repairs pay past it; every node charges 1 VEIL per GB.
PARAMS = Params(chain_id=DEVNET_CHAIN, allowance_bytes=1_000_000, price_per_gb=10**9)
CHARGE = ["--price-per-gb", "1", "--free-credit", "1MB"]
SHAPE = ["-k", "2", "-n", "5", "--happy", "5"]
REPAIR = ["--repair-interval", "1", "--repair-threshold", "n"]


class PaidChurn(ChurnDevnet):
    wallet: Wallet
    payer: Payer

    def checked(self, vcap: str, full: bool = False) -> CheckReport:
        net = self.network()
        try:
            return check(net, parse_verify_cap(vcap), full=full, payer=self.payer)
        finally:
            net.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaidChurn]:
    d = PaidChurn(tmp_path_factory.mktemp("paid-churn-home"))
    d.devnet.up(NODES, ["storage"], REPAIR, params=PARAMS, charge=CHARGE, admission=True)
    try:
        d.wallet = create_wallet(d.home / "user.wallet", PASS, m_cost_kib=1024)
        faucet(d.devnet, d.wallet.address, 20 * UNIT)  # and the allowance stake: storage quota
        d.env |= {"VEIL_WALLET": str(d.wallet.path), "VEIL_PASSPHRASE": PASS, "VEIL_DEPOSIT": "0.1"}
        w = d.wallet
        d.payer = Payer(lambda: w, devnet_ledger_client(d.devnet), max_spend=10 * UNIT, deposit=UNIT // 10)
        yield d
    finally:
        d.devnet.down()


def test_a_charging_admitting_network_heals_after_30_percent_churn(net: PaidChurn, tmp_path: Path) -> None:
    files = []
    for i in range(FILES):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(150_000 + 120_000 * i))
        files.append((p, put_json(net.veil("put", "--json", str(p), *SHAPE))))
    for _, caps in files:
        assert net.checked(caps["verify cap"]).healthy

    storage = [s.name for s in net.devnet.specs() if "storage" in s.roles]
    victims = storage[: len(storage) * 3 // 10]
    for v in victims:
        net.veil("devnet", "kill", v, "--wipe")
    kept = {s.name for s in net.devnet.specs()}
    net.veil("devnet", "add", "--nodes", str(len(victims)), *REPAIR)
    new = [s for s in net.devnet.specs() if "storage" in s.roles and s.name not in kept]
    assert len(new) == len(victims)
    assert all("--price-per-gb" in s.args and "--storage-admission" in s.args for s in new)

    def all_healthy() -> bool:
        return all(net.checked(c["verify cap"]).healthy for _, c in files)

    wait_for(all_healthy, timeout=180, what="automatic repair of every file on a charging network")
    assert_restored(net, files, tmp_path, net.checked, "--max-spend", "1")

    # The repairers paid, from their nodes' own accounts, in channels on the ledger.
    ids = net.devnet.known_ids()
    static = load_network(net.devnet.static_network_path)
    ledger = devnet_ledger_client(net.devnet)
    try:
        repaired = spent = opened = 0
        for s in net.devnet.specs():
            if "repairer" not in s.roles or net.devnet.pid_of(s) is None:
                continue
            st = PeerClient("127.0.0.1", s.port, ids[s.name]).call("GET", "/v1/node")["roles"]["repairer"]
            repaired += st["repaired_shares"]
            spent += st["spent"]
            if st["repaired_shares"]:
                addr = address_of(load_or_create(net.devnet.node_dir(s) / "identity.key").public_key)
                opened += len(ledger.account(addr)["channels"])
        assert repaired > 0 and spent > 0 and opened > 0, (repaired, spent, opened)
    finally:
        ledger.close()
        static.close()
        net.payer.close()
        assert isinstance(net.payer.ledger, LedgerClient)
        net.payer.ledger.close()
