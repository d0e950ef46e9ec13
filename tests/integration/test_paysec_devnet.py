"""Issue 19 attacks against a small charging devnet of real node processes (a validator and
five charging storage nodes over TLS), with the real `veil` CLI:

- item 2: a node advertising another node's payee is neither paid nor leased;
- item 5: a default `veil put` writes no address linkable to the uploader's wallet;
- item 8: a manifest served under a foreign storage index is refused;
- issue 18 item 12: nodes added with `veil devnet add` charge like the others."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put, put_json

from veil.client.channels import PayerChannels
from veil.client.locate import locate
from veil.client.network import NodeInfo, load_network
from veil.client.wallet import Wallet, create_wallet
from veil.crypto.sign import node_id
from veil.devnet.ledger import DEVNET_CHAIN, devnet_ledger_client, faucet
from veil.devnet.manager import NodeSpec
from veil.errors import PaymentRequiredError
from veil.format.caps import ReadCap, parse_read_cap
from veil.format.manifest import manifest_hash
from veil.gateway.budget import SpendBudgets, SpendRules
from veil.gateway.files import FileReader
from veil.gateway.pay import GatewayWallet
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.params import Params
from veil.node.identity import load_or_create
from veil.node.repair_role import leader
from veil.protocol.storage import slot_path

pytestmark = pytest.mark.integration

PARAMS = Params(chain_id=DEVNET_CHAIN, allowance_bytes=1_000_000, price_per_gb=10**9, uploader_share_bp=2_000)
CHARGE = ["--price-per-gb", "1", "--free-credit", "1MB", "--lease-price-per-gb-day", "1"]
PASS = "correct horse"
SHAPE = ["-k", "2", "-n", "5", "--happy", "5"]
HOSTILE = Path(__file__).with_name("hostile_payee_node.py")


class Paid(RunningDevnet):
    def wallet(self, name: str, fund: int = 0, stake: int | None = None) -> Wallet:
        """A funded wallet; the faucet also stakes for its allowance unless ``stake`` is 0."""
        w = create_wallet(self.home / f"{name}.wallet", PASS, m_cost_kib=1024)
        if fund:
            faucet(self.devnet, w.address, fund, stake=stake)
        return w

    def as_user(self, w: Wallet, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_WALLET": str(w.path), "VEIL_PASSPHRASE": PASS, "VEIL_DEPOSIT": "0.1"}
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def storage(self) -> list[NodeSpec]:
        return [s for s in self.devnet.specs() if "storage" in s.roles]

    def key_of(self, spec: NodeSpec) -> bytes:
        return load_or_create(self.devnet.node_dir(spec) / "identity.key").public_key

    def slot_dirs(self, si: bytes, mhash: bytes) -> list[Path]:
        """Slot (si, mhash) on every storage node's disk (storage/store.py's layout), existing or not:
        a hostile node writes there directly."""
        h = si.hex()
        return [self.devnet.node_dir(s) / "storage" / "slots" / h[:2] / h / mhash.hex() for s in self.storage()]

    def served_manifests(self, cap: ReadCap) -> list[bytes]:
        """The manifest every storage node serves for the file (GET /v1/shares/{si}?m=)."""
        net = load_network(self.devnet.static_network_path)  # every node, not just the bootstrap ones
        out = []
        for node in net.nodes:
            if "storage" in node.roles:
                m = net.client(node).call("GET", slot_path(cap.storage_index, cap.manifest_hash)).get("manifest")
                if m is not None:
                    out.append(m)
        return out


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paid]:
    home = tmp_path_factory.mktemp("veil-paysec")
    d = Paid(home / "devnet", home)
    # Nodes' repairers do not pay (--repair-wallet none), so the tests below choose who repairs.
    # Storage is open here (admission=False): `veil repair` below pays from a wallet with no stake
    # (so no free allowance), which admitting nodes would refuse tickets from; admission on a
    # charging network is tested in test_repair_churn_paid.py and test_repair_escrow_devnet.py.
    d.net, _ = d.devnet.up(5, ["storage"], ["--repair-wallet", "none"], params=PARAMS, charge=CHARGE, admission=False)
    try:
        yield d
    finally:
        d.devnet.down()


def _read_cap(out: dict[str, str]) -> ReadCap:
    return parse_read_cap(out["read cap"])


def test_default_put_writes_no_address_linkable_to_the_wallet(paid: Paid, tmp_path: Path) -> None:
    a = paid.wallet("uploader", fund=UNIT)
    src = tmp_path / "private.bin"
    src.write_bytes(os.urandom(200_000))
    cap = _read_cap(put_json(paid.as_user(a, "put", "--json", str(src), *SHAPE, check=True)))
    man = locate(load_network(paid.devnet.network_path), cap.storage_index, cap.manifest_hash).manifest
    assert man.payout is None
    served = paid.served_manifests(cap)
    assert len(served) == 5 and all(a.address not in m for m in served)
    # Opting in still works.
    out = paid.as_user(a, "put", "--json", str(src), *SHAPE, "--payout", "wallet", check=True)
    cap2 = parse_read_cap(put_json(out)["read cap"])
    man2 = locate(load_network(paid.devnet.network_path), cap2.storage_index, cap2.manifest_hash).manifest
    assert man2.payout == a.address


def test_a_manifest_under_a_foreign_storage_index_is_refused(paid: Paid, tmp_path: Path) -> None:
    """Hostile holders answer for file A with file B's manifest; the reader's cap names A's key
    and B's manifest hash (what a malicious cap maker hands out). Without the check the manifest
    passed, since its hash matches the cap."""
    a_src, b_src = tmp_path / "a.bin", tmp_path / "b.bin"
    a_src.write_bytes(os.urandom(50_000))
    b_src.write_bytes(os.urandom(50_000))
    a = _read_cap(put(paid, a_src, *SHAPE))
    b = _read_cap(put(paid, b_src, *SHAPE))
    b_manifest = next(p / "manifest" for p in paid.slot_dirs(b.storage_index, b.manifest_hash)
                      if (p / "manifest").exists()).read_bytes()  # fmt: skip
    for d in paid.slot_dirs(a.storage_index, b.manifest_hash):  # what hostile nodes serve for A
        d.mkdir(parents=True, exist_ok=True)
        (d / "manifest").write_bytes(b_manifest)
    crafted = ReadCap(a.file_key, manifest_hash(b_manifest))
    for cmd in (["get", crafted.to_string(), "-o", str(tmp_path / "out")], ["info", crafted.to_string()]):
        r = paid.veil(*cmd)
        assert r.returncode != 0
        assert b"another storage index" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def _restart(paid: Paid, spec: NodeSpec, program: list[str], args: list[str], env: dict[str, str]) -> None:
    """Restart a devnet node as ``program node run ...`` with ``args`` (a hostile variant)."""
    paid.devnet.stop_node(spec)
    d = paid.devnet.node_dir(spec)
    (d / "node.json").unlink(missing_ok=True)
    cmd = [*program, "node", "run", "--data", str(d), "--listen", f"127.0.0.1:{spec.port}",
           "--role", ",".join(spec.roles), *args]  # fmt: skip
    with open(d / "node.log", "ab") as log:
        subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    paid.devnet.wait_ready([spec])


def _start_hostile(paid: Paid, spec: NodeSpec, victim: NodeSpec, lie_key: bool) -> None:
    env = {**paid.env, "HOSTILE_PAYEE": address_of(paid.key_of(victim)).hex()}
    if lie_key:
        env["HOSTILE_KEY"] = paid.key_of(victim).hex()
    _restart(paid, spec, [sys.executable, str(HOSTILE)], spec.args, env)


@pytest.mark.parametrize("lie_key", [False, True])
def test_a_node_advertising_another_nodes_payee_is_refused(paid: Paid, tmp_path: Path, lie_key: bool) -> None:
    hostile, victim = paid.storage()[0], paid.storage()[1]
    up = paid.wallet(f"lessor-{int(lie_key)}", fund=5 * UNIT)
    src = tmp_path / "leased.bin"
    src.write_bytes(os.urandom(300_000))
    _start_hostile(paid, hostile, victim, lie_key)
    try:
        c = devnet_ledger_client(paid.devnet)
        victim_addr = address_of(paid.key_of(victim))
        r = paid.as_user(up, "put", str(src), *SHAPE, "--lease", "1", check=True)
        # The hostile node's share gets no lease, and the warning says why; the victim is leased
        # only for its own share, so no audit of the hostile node can ever fail the victim's lease.
        assert b"not leased" in r.stderr, r.stderr
        leases = [le for lid in c.leases_of(up.address) if (le := c.lease(lid)) is not None]
        assert len(leases) == len(paid.storage()) - 1
        assert sum(1 for le in leases if le.payee == victim_addr) == 1
        # A downloader never pays the hostile node (it falls back to the honest holders).
        d = paid.wallet(f"reader-{int(lie_key)}", fund=5 * UNIT)
        cap = next(x.split()[-1] for x in r.stdout.decode().splitlines() if x.startswith("read cap"))
        for i in range(3):  # past the free allowance, so nodes are paid
            out = tmp_path / f"back{i}.bin"
            paid.as_user(d, "get", cap, "-o", str(out), "--max-spend", "1", check=True)
            assert out.read_bytes() == src.read_bytes()
        hostile_key = paid.key_of(hostile)
        for _cid, ch in c.account(d.address)["channels"]:
            assert ch.payee in {address_of(paid.key_of(s)) for s in paid.storage()}
            assert ch.payee != address_of(hostile_key)
        c.close()
    finally:
        paid.devnet.stop_node(hostile)
        paid.devnet.start_node(hostile)
        paid.devnet.wait_ready([hostile])
        time.sleep(0.5)


def test_nodes_added_to_a_charging_devnet_charge(paid: Paid) -> None:
    before = {s.name for s in paid.storage()}
    _, names = paid.devnet.add(1)
    new = [s for s in paid.storage() if s.name not in before]
    assert [s.name for s in new] == names
    assert "--price-per-gb" in new[0].args and "--validator" in new[0].args
    c = devnet_ledger_client(paid.devnet)
    try:
        assert c.node(address_of(paid.key_of(new[0]))) is not None  # registered: the pool pays it
    finally:
        c.close()
    paid.devnet.kill(names[0], wipe=True)


def _fetch_all(reader: FileReader, cap: ReadCap, visitor: str) -> int:
    _, _, length, body = reader.segment_range(cap.verify_cap(), 0, None, visitor=visitor)
    got = sum(len(x) for x in body)
    assert got == length
    return got


def test_the_gateway_pays_within_its_price_ceiling_and_budgets(paid: Paid, tmp_path: Path) -> None:
    """Issue 19 item 6: three greedy nodes (1000 VEIL/GB) hold shares of a file; the gateway pays
    none of them, and a visitor or a file past its budget is refused with a clear reason."""
    src = tmp_path / "popular.bin"
    src.write_bytes(os.urandom(200_000))
    cap = _read_cap(put(paid, src, *SHAPE))
    greedy = paid.storage()[2:5]
    for spec in greedy:
        args = [a if prev != "--price-per-gb" else "1000" for prev, a in zip(["", *spec.args], spec.args, strict=False)]
        _restart(paid, spec, [sys.executable, "-m", "veil.cli.main"], args, paid.env)
    net = load_network(paid.devnet.network_path)
    w = paid.wallet("gateway", fund=5 * UNIT, stake=0)  # no stake: no free allowance, every byte is paid
    rules = SpendRules(max_price_per_gb=2 * UNIT, per_visitor=300_000, per_file=None)
    gw = GatewayWallet(w, max_spend=UNIT, deposit=UNIT // 10, rules=rules)
    reader = FileReader(lambda: net, wallet=gw)
    try:
        # Within the ceiling: only the two honest holders are paid, and the file still comes.
        assert _fetch_all(reader, cap, "198.51.100.1") > 0
        # The same visitor again: the download would pass its daily budget.
        with pytest.raises(PaymentRequiredError, match="your download budget"):
            _fetch_all(reader, cap, "198.51.100.1")
        # Another visitor is not affected.
        assert _fetch_all(reader, cap, "198.51.100.2") > 0
        # A per-file budget stops every visitor of that file.
        gw.budgets = SpendBudgets(SpendRules(max_price_per_gb=2 * UNIT, per_file=1000))
        with pytest.raises(PaymentRequiredError, match="this file's download budget"):
            _fetch_all(reader, cap, "198.51.100.3")
    finally:
        gw.close()
    book = PayerChannels(w.channels_path, w.key)
    try:
        greedy_addrs = {address_of(paid.key_of(s)) for s in greedy}
        assert sum(pc.amount for pc in book.all() if pc.payee in greedy_addrs) == 0
        spent = sum(pc.amount for pc in book.all())
        assert 0 < spent <= 2 * 300_000  # two visitors' budgets at most
    finally:
        book.close()


def _holders(paid: Paid, cap: ReadCap) -> int:
    net = load_network(paid.devnet.static_network_path)
    return len(locate(net, cap.storage_index, cap.manifest_hash).holders)


def _holding(paid: Paid, cap: ReadCap) -> list[NodeSpec]:
    """The running storage nodes that say they hold a share of the file."""
    net = load_network(paid.devnet.static_network_path)
    by_port = {n.port: n for n in net.nodes}
    out = []
    for s in paid.storage():
        node = by_port.get(s.port)
        if node is not None and paid.devnet.pid_of(s) is not None:
            if net.client(node).call("GET", slot_path(cap.storage_index, cap.manifest_hash))["shares"]:
                out.append(s)
    return out


def test_a_charging_network_heals_and_the_repairer_pays(paid: Paid, tmp_path: Path) -> None:
    """Issue 18 item 12: every node charges; a holder dies for good and a fresh node joins
    (charging too). `veil repair` pays for the blocks it checks and reads and brings the file
    back to n shares; then a node's own repairer, given a wallet, heals another file alone."""
    repairer = paid.wallet("repairer", fund=5 * UNIT, stake=0)  # no stake: every byte read is paid
    src = tmp_path / "precious.bin"
    src.write_bytes(os.urandom(400_000))
    cap = _read_cap(put(paid, src, *SHAPE))
    assert _holders(paid, cap) == 5
    paid.devnet.kill(_holding(paid, cap)[-1].name, wipe=True)
    paid.devnet.add(1)
    assert _holders(paid, cap) == 4
    r = paid.as_user(repairer, "repair", cap.verify_cap().to_string(), "--max-spend", "1")
    assert r.returncode == 0, r.stderr
    assert b"healthy: 4 -> 5 of 5" in r.stdout and b"VEIL" in r.stdout, r.stdout
    assert _holders(paid, cap) == 5
    book = PayerChannels(repairer.channels_path, repairer.key)
    try:
        assert sum(pc.amount for pc in book.all()) > 0  # it paid, in cheques the nodes settle on the ledger
    finally:
        book.close()
    out = tmp_path / "back.bin"
    paid.as_user(repairer, "get", cap.to_string(), "-o", str(out), "--max-spend", "1", check=True)
    assert out.read_bytes() == src.read_bytes()

    # A node's repairer with a wallet heals by itself (the others have none and cannot pay).
    src2 = tmp_path / "second.bin"
    src2.write_bytes(os.urandom(300_000))
    cap2 = _read_cap(put(paid, src2, *SHAPE))
    holders = _holding(paid, cap2)
    # The healer must be the file's repair leader (the first holder in placement order): only the
    # leader repairs (docs/specs/repair.md, "The leader"); the victim is any other holder.
    by_id = {node_id(paid.key_of(s)): s for s in holders}
    first = leader(cap2.storage_index, [NodeInfo("127.0.0.1", s.port, nid) for nid, s in by_id.items()])
    assert first is not None
    healer = by_id[first.node_id]
    victim = next(s for s in holders if s is not healer)
    # Every visit of every file it holds (--repair-interval 1) pays for the blocks it samples, so
    # on a slow run the checks alone can use up a small budget before the new node has joined:
    # the budget is sized for minutes of checks, not for the one repair.
    node_wallet = paid.wallet("node-repairer", fund=20 * UNIT, stake=0)
    args = [*healer.args, "--repair-interval", "1", "--repair-wallet", str(node_wallet.path),
            "--repair-max-spend", "10"]  # fmt: skip
    _restart(paid, healer, [sys.executable, "-m", "veil.cli.main"], args, {**paid.env, "VEIL_PASSPHRASE": PASS})
    paid.devnet.kill(victim.name, wipe=True)
    paid.devnet.add(1)
    deadline = time.monotonic() + 240  # a wait for the repair, not a speed assertion
    net = load_network(paid.devnet.static_network_path)
    healer_node = next(n for n in net.nodes if n.port == healer.port)
    while _holders(paid, cap2) < 5 and time.monotonic() < deadline:
        time.sleep(2)
    status = net.client(healer_node).call("GET", "/v1/node")["roles"]["repairer"]
    assert _holders(paid, cap2) == 5, status
    assert status["spent"] > 0, status
