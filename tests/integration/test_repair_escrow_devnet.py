"""The automatic repairer is paid back from the file's lease escrow (issue 18 item 12), on a real
charging devnet that admits storage by ticket (the default): real node processes, the real
`veil` CLI, the real ledger.

The uploader leases its shares and names the file's expected repair leader as the leases'
auditor (`veil put --lease 30 --lease-auditor leader`). A holder is killed and wiped; the
leader's repairer — no CLI, no `veil audit` — repairs the file paying the charging holders from
its own account, challenges the dead node's lease on the ledger, and when the challenge runs
out moves the lease (``lease_move``): the repair's cost back to itself, the rest of the unearned
escrow to a new lease paying the share's new holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet

from veil.client.ledger_client import LedgerClient
from veil.client.network import load_network
from veil.client.wallet import Wallet, create_wallet
from veil.devnet.ledger import DEVNET_CHAIN, devnet_ledger_client, faucet
from veil.devnet.specs import NodeSpec
from veil.format.caps import parse_read_cap
from veil.ledger.address import address_of, decode_address
from veil.ledger.amount import UNIT
from veil.ledger.lease import ACTIVE, FAILED
from veil.ledger.params import Params
from veil.node.identity import load_or_create
from veil.protocol.storage import slot_path

pytestmark = pytest.mark.integration

# No free allowance: every block a repairer checks or fetches is paid for. Challenges run out in 8 s.
PARAMS = Params(chain_id=DEVNET_CHAIN, allowance_bytes=0, price_per_gb=10**9, challenge_seconds=8)
CHARGE = ["--price-per-gb", "1", "--free-credit", "64KB", "--lease-price-per-gb-day", "1"]
REPAIR = ["--repair-interval", "2"]
SHAPE = ["-k", "2", "-n", "4", "--happy", "4"]
PASS = "correct horse"


class EscrowDevnet(RunningDevnet):
    def storage(self) -> list[NodeSpec]:
        return [s for s in self.devnet.specs() if "storage" in s.roles]

    def addr_of(self, spec: NodeSpec) -> bytes:
        return address_of(load_or_create(self.devnet.node_dir(spec) / "identity.key").public_key)

    def as_user(self, w: Wallet, *args: str) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_WALLET": str(w.path), "VEIL_PASSPHRASE": PASS, "VEIL_DEPOSIT": "0.1"}
        return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True,
                              timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EscrowDevnet]:
    home = tmp_path_factory.mktemp("veil-escrow")
    d = EscrowDevnet(home / "devnet", home)
    d.net, _ = d.devnet.up(6, ["storage"], REPAIR, params=PARAMS, charge=CHARGE)
    try:
        yield d
    finally:
        d.devnet.down()


def _wait_for(cond: Callable[[], bool], what: str, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.mark.timeout(900)  # a devnet, an upload, a repair and a challenge window, on a loaded machine
def test_the_node_repairer_is_paid_back_from_the_lease_escrow(dev: EscrowDevnet, tmp_path: Path) -> None:
    u = create_wallet(dev.home / "u.wallet", PASS, m_cost_kib=1024)
    faucet(dev.devnet, u.address, 20 * UNIT)  # money for the leases, and stake: storage quota
    bad = dev.as_user(u, "put", str(tmp_path), "--lease-auditor", "leader")
    assert bad.returncode == 2 and b"--lease-auditor needs --lease" in bad.stderr, bad.stderr
    src = tmp_path / "leased.bin"
    src.write_bytes(os.urandom(600_000))
    p = dev.as_user(u, "put", str(src), *SHAPE, "--lease", "30", "--lease-auditor", "leader")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "leases:     4 of 4 shares for 30 days" in out, out
    leader_addr = decode_address(out.split("audited by ")[1].split()[0])
    rcap = parse_read_cap(next(x.split()[-1] for x in out.splitlines() if x.startswith("read cap")))
    vcap = rcap.verify_cap()
    net = load_network(dev.devnet.static_network_path)
    by_port = {n.port: n for n in net.nodes}
    holders = [s for s in dev.storage()
               if net.client(by_port[s.port]).call("GET", slot_path(vcap.storage_index, vcap.manifest_hash))["shares"]]
    leader = next(s for s in holders if dev.addr_of(s) == leader_addr)
    c: LedgerClient = devnet_ledger_client(dev.devnet)
    leases = {le.payee: (lid, le) for lid in c.leases_of(u.address) if (le := c.lease(lid)) is not None}
    # (a holder may also keep a share the leader's first check re-made elsewhere: no lease of its own)
    victim = next(s for s in holders if s is not leader and dev.addr_of(s) in leases)
    victim_addr = dev.addr_of(victim)
    lid, le = leases[victim_addr]
    assert le.auditor == leader_addr
    dev.devnet.kill(victim.name, wipe=True)
    # The leader notices the departure, repairs, challenges the lease, and moves it once the
    # challenge has run out unanswered.
    _wait_for(lambda: (x := c.lease(lid)) is not None and x.status == FAILED, "the dead node's lease was never moved")
    failed = c.lease(lid)
    assert failed is not None
    unearned = le.amount - failed.accrued(failed.failed_at)
    moved = [m for m in (c.lease(x) for x in c.leases_of(u.address))
             if m is not None and m.root == le.root and m.status == ACTIVE]  # fmt: skip
    assert len(moved) == 1
    new = moved[0]
    assert new.payee not in (victim_addr, u.address) and new.payer == u.address and new.auditor == leader_addr
    assert new.end == le.end
    status = net.client(by_port[leader.port]).call("GET", "/v1/node")["roles"]["repairer"]
    escrow = status["escrow"]
    assert escrow["moved"] == 1 and escrow["challenged"] >= 1, status
    # What the escrow paid back is exactly what the new lease lacks, and no more than the repairer spent.
    assert 0 < escrow["repaid"] == unearned - new.amount <= status["spent"], (escrow, unearned, new.amount)
    # The new holder keeps the share: it is the node now holding that share number.
    new_holder = next(s for s in dev.storage() if dev.addr_of(s) == new.payee)
    assert net.client(by_port[new_holder.port]).call("GET", slot_path(vcap.storage_index, vcap.manifest_hash))["shares"]
    back = tmp_path / "back.bin"
    g = dev.as_user(u, "get", rcap.to_string(), "-o", str(back), "--max-spend", "1")
    assert g.returncode == 0, g.stderr
    assert back.read_bytes() == src.read_bytes()
    c.close()
