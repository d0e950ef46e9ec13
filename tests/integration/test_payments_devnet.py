"""Pay as you download on a real devnet: a validator and 10 charging storage nodes (real
processes over TLS), an 8 MB allowance through genesis, and the real `veil` CLI.

Prices are 1 VEIL per GB = 1 unit per byte, both what nodes charge and what the allowance
pool pays for free bytes, so every expected balance below is exact integer arithmetic."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet, put, put_json

from veil.client.channels import PayerChannels
from veil.client.ledger_client import LedgerClient
from veil.client.network import load_network
from veil.client.wallet import Wallet, create_wallet
from veil.devnet.ledger import (
    DEVNET_CHAIN,
    NODE_FUNDS,
    devnet_ledger_client,
    faucet,
    load_faucet_key,
    validator_spec,
)
from veil.devnet.metrics import metrics_port, scrape
from veil.devnet.specs import NodeSpec
from veil.errors import LedgerError, VeilError
from veil.format.caps import parse_verify_cap
from veil.ledger import tx as T
from veil.ledger.address import address_of, encode_address
from veil.ledger.amount import UNIT, format_amount
from veil.ledger.cheque import decode_cheque
from veil.ledger.lease import Lease
from veil.ledger.params import Params
from veil.ledger.state import Channel
from veil.node.identity import load_or_create

pytestmark = pytest.mark.integration

ALLOWANCE = 8_000_000
PARAMS = Params(chain_id=DEVNET_CHAIN, allowance_bytes=ALLOWANCE, price_per_gb=10**9, uploader_share_bp=2_000,
                challenge_seconds=8)  # lease challenges are answered (or fail) within 8 s
CHARGE = ["--price-per-gb", "1", "--free-credit", "4MB", "--lease-price-per-gb-day", "1"]
PASS = "correct horse"


class PaidDevnet(RunningDevnet):
    def wallet(self, name: str, fund: int = 0) -> Wallet:
        w = create_wallet(self.home / f"{name}.wallet", PASS, m_cost_kib=1024)
        if fund:
            faucet(self.devnet, w.address, fund)
        return w

    def as_user(self, w: Wallet, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
        env = {**self.env, "VEIL_WALLET": str(w.path), "VEIL_PASSPHRASE": PASS, "VEIL_DEPOSIT": "0.1"}
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"veil {' '.join(args)} failed ({p.returncode}): {p.stderr.decode()}")
        return p

    def ledger(self) -> LedgerClient:
        return devnet_ledger_client(self.devnet)

    def storage(self) -> list[NodeSpec]:
        return [s for s in self.devnet.specs() if "storage" in s.roles]

    def node_addr(self, spec: NodeSpec) -> bytes:
        return address_of(load_or_create(self.devnet.node_dir(spec) / "identity.key").public_key)

    def settle_all(self) -> None:
        for s in self.storage():
            if self.devnet.pid_of(s) is not None:
                self.veil("node", "earnings", "--data", str(self.devnet.node_dir(s)), check=True)


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaidDevnet]:
    home = tmp_path_factory.mktemp("veil-paid")
    d = PaidDevnet(home / "devnet", home)
    # The nodes' repairers never pay here (--repair-wallet none): the balances below are exact, and
    # a repairer's paid check of a file (its sweep may reach one on a slow run) would move them.
    d.net, _ = d.devnet.up(10, ["storage"], ["--repair-wallet", "none"], params=PARAMS, charge=CHARGE)
    try:
        yield d
    finally:
        d.devnet.down()


def channels_of(c: LedgerClient, payer: bytes) -> list[tuple[bytes, Channel]]:
    return [(cid, ch) for cid, ch in c.account(payer)["channels"] if ch.payer == payer]


def test_download_spends_allowance_then_pays_and_rewards_uploader(paid: PaidDevnet, tmp_path: Path) -> None:
    a = paid.wallet("a", fund=10 * UNIT)
    b = paid.wallet("b", fund=10 * UNIT)
    src = tmp_path / "movie.bin"
    src.write_bytes(os.urandom(12_000_000))
    cap = put_json(paid.as_user(a, "put", "--json", str(src), "--payout", "wallet", check=True))["read cap"]
    c = paid.ledger()
    info0 = c.info()
    a_before = c.account(a.address)["balance"]
    node_addrs = {s.name: paid.node_addr(s) for s in paid.storage()}

    out = tmp_path / "out.bin"
    g = paid.as_user(b, "get", cap, "-o", str(out), "--max-spend", "5", check=True)
    assert out.read_bytes() == src.read_bytes()
    assert b"allowance used" in g.stderr and b"VEIL" in g.stderr
    paid.settle_all()

    chans = channels_of(c, b.address)
    assert chans, "B opened channels to the nodes it fetched from"
    free = sum(ch.free_bytes for _, ch in chans)
    paid_amount = sum(ch.paid for _, ch in chans)
    paid_bytes = sum(ch.paid_bytes for _, ch in chans)
    # The allowance went first and entirely, then the deposits paid, at 1 unit per byte.
    assert free == ALLOWANCE
    assert c.account(b.address)["allowance_left"] == 0
    assert paid_bytes > 0 and paid_amount == paid_bytes
    # Deposits were sized to what the downloads would spend (payments.md, "Deposits"), not a flat
    # VEIL_DEPOSIT (0.1 VEIL = 10^8 units) per node: a few times the bytes fetched, at 1 unit per byte.
    assert sum(ch.total_deposit for _, ch in chans) <= 3 * (free + paid_amount) < len(chans) * 10**8
    assert free + paid_bytes >= 12_000_000  # at least k shares' worth of blocks
    # Everything B paid is attributed to A, and A got exactly the uploader share of it.
    for _, ch in chans:
        assert dict(ch.uploaders) == ({a.address: ch.paid} if ch.paid else {})
    a_gain = c.account(a.address)["balance"] - a_before
    assert a_gain == sum(PARAMS.uploader_share(ch.paid) for _, ch in chans) > 0
    # Each node earned exactly what it served times the price (the uploader's cut out of the paid part).
    by_payee = {ch.payee: ch for _, ch in chans}
    for name, addr in node_addrs.items():
        acct = c.account(addr)
        ch = by_payee.get(addr)
        # (NODE_FUNDS: the devnet's sponsorship of the node's own account; its repairer pays nothing here)
        expect = NODE_FUNDS + (0 if ch is None else ch.free_bytes + ch.paid - PARAMS.uploader_share(ch.paid))
        assert acct["balance"] + acct["nonce"] * PARAMS.min_fee == expect, name
        st = paid.veil("node", "earnings", "--data", str(paid.devnet.node_dir(paid.node(name))), "--no-settle")  # type: ignore[arg-type]
        assert st.returncode == 0
        # ... and its Prometheus endpoint says what it earned (docs/specs/operations.md, "Metrics")
        m = scrape(metrics_port(paid.devnet, paid.node(name)) or 0)  # type: ignore[arg-type]
        assert m.get("veil_earnings_accepted_base_units_total", 0) == (0 if ch is None else ch.paid), name
        assert m.get("veil_payments_served_paid_bytes_total", 0) == (0 if ch is None else ch.paid_bytes), name
    # B's cheques on disk say the same as the ledger (every cheque B signed was settled).
    book = PayerChannels(b.channels_path, b.key)
    try:
        local = {pc.id: pc for pc in book.all()}
    finally:
        book.close()
    for cid, ch in chans:
        assert (local[cid].free_bytes, local[cid].amount) == (ch.free_bytes, ch.paid)
    # `veil account` shows it; money was only moved: a full replay checks the supply.
    acc = paid.as_user(a, "account", check=True).stdout.decode()
    assert f"earned:     {format_amount(a_gain)} VEIL as uploader" in acc
    info1 = c.info()
    assert info1["minted"] == info0["minted"]
    from veil.ledger.block import decode_header

    fees = PARAMS.min_fee * sum(decode_header(h).ntx for h in c.headers(int(info0["height"]) + 1, 1000))
    # The pool paid the (bonded) nodes for the free bytes, at 1 unit per byte, and took in every fee.
    assert info0["pool"] - info1["pool"] == free - fees
    v = paid.veil("ledger", "verify", check=True)
    assert b"intact" in v.stdout
    c.close()



def test_downloading_own_file_earns_nothing(paid: PaidDevnet, tmp_path: Path) -> None:
    a = paid.wallet("own", fund=10 * UNIT)
    src = tmp_path / "mine.bin"
    src.write_bytes(os.urandom(6_000_000))
    cap = put(paid, src, "--payout", encode_address(a.address))["read cap"]
    c = paid.ledger()
    for i in range(3):  # past the 8 MB allowance: the later downloads are paid
        out = tmp_path / f"o{i}"
        paid.as_user(a, "get", cap, "-o", str(out), check=True)
        assert out.read_bytes() == src.read_bytes()
    paid.settle_all()
    chans = channels_of(c, a.address)
    assert sum(ch.paid for _, ch in chans) > 0, "A paid for its own downloads past the allowance"
    assert all(ch.uploaders == () for _, ch in chans), "no uploader share for one's own file"
    acc = paid.as_user(a, "account", check=True).stdout.decode()
    assert "earned:     0 VEIL" in acc
    c.close()


def test_max_spend_stops_and_says_so(paid: PaidDevnet, tmp_path: Path) -> None:
    up = paid.wallet("up2")
    d = paid.wallet("frugal", fund=10 * UNIT)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(14_000_000))
    cap = put(paid, src, "--payout", encode_address(up.address))["read cap"]
    out = tmp_path / "never.bin"
    g = paid.as_user(d, "get", cap, "-o", str(out), "--max-spend", "0.001")
    assert g.returncode == 7, g.stderr
    assert b"spending limit" in g.stderr and b"--max-spend" in g.stderr
    assert not out.exists()
    # It spent no more than the limit.
    book = PayerChannels(d.channels_path, d.key)
    try:
        assert sum(pc.amount for pc in book.all()) <= 1_000_000
    finally:
        book.close()


def test_no_wallet_gets_a_clear_error(paid: PaidDevnet, tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(os.urandom(100_000))
    cap = put(paid, src)["read cap"]
    env = {**paid.env, "VEIL_WALLET": str(tmp_path / "no-such-wallet")}
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "get", cap, "-o", str(tmp_path / "o")], env=env,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    assert p.returncode == 7
    assert b"veil wallet create" in p.stderr


def _latest_cheque(db: Path) -> dict[bytes, int]:
    con = sqlite3.connect(str(db))
    try:
        return {bytes(cid): decode_cheque(bytes(raw)).seq for cid, raw in con.execute("SELECT channel, raw FROM cheques")}
    finally:
        con.close()


def test_node_killed_mid_download_settles_after_restart(paid: PaidDevnet, tmp_path: Path) -> None:
    u = paid.wallet("killer", fund=10 * UNIT)
    src = tmp_path / "k.bin"
    src.write_bytes(os.urandom(24_000_000))
    cap = put(paid, src)["read cap"]
    # The node holding share 0 (a data share: always fetched first).
    lines = paid.veil("info", cap, check=True).stdout.decode().splitlines()
    holder = next(x for x in lines if x.strip().startswith("share   0:")).split(":", 1)[1].strip()
    # a node is named by its address when the client found it through the DHT
    victim = next(s for s in paid.storage() if holder in (s.name, f"127.0.0.1:{s.port}") or
                  holder.startswith(f"127.0.0.1:{s.port} "))
    db = paid.devnet.node_dir(victim) / "payments" / "cheques.db"
    env = {**paid.env, "VEIL_WALLET": str(u.path), "VEIL_PASSPHRASE": PASS}
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "get", cap, "-o", str(tmp_path / "k.out")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        while not (db.exists() and any(_latest_cheque(db))) and proc.poll() is None:
            time.sleep(0.01)
        paid.devnet.stop_node(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert (tmp_path / "k.out").read_bytes() == src.read_bytes()
    owed = _latest_cheque(db)  # what the node had accepted (and persisted) when it died
    assert owed
    paid.devnet.up(10, ["storage"], [])  # restarts the killed node only
    c = paid.ledger()
    deadline = time.monotonic() + 60
    while True:  # it settles what it is owed by itself on start
        settled = {cid: (ch.seq if ch is not None else -1) for cid in owed for ch in [c.channel(cid)]}
        if all(settled[cid] >= seq for cid, seq in owed.items()):
            break
        assert time.monotonic() < deadline, f"not settled after restart: {settled} vs {owed}"
        time.sleep(0.2)
    assert settled == owed
    c.close()


def _lease_of(paid: PaidDevnet, c: LedgerClient, payer: bytes, spec: NodeSpec) -> tuple[bytes, Lease]:
    addr = paid.node_addr(spec)
    lid, le = next((lid, le) for lid in c.leases_of(payer) if (le := c.lease(lid)) is not None and le.payee == addr)
    return lid, le


def _wait_for(cond: Callable[[], bool], what: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_node_that_deleted_a_leased_share_fails_its_audit_and_stops_being_paid(paid: PaidDevnet, tmp_path: Path) -> None:
    u = paid.wallet("lessor", fund=10 * UNIT)
    src = tmp_path / "keep.bin"
    src.write_bytes(os.urandom(3_000_000))
    out = paid.as_user(u, "put", str(src), "--lease", "30", check=True).stdout.decode()
    assert "leases:     10 of 10 shares for 30 days" in out
    vcap = next(x.split()[-1] for x in out.splitlines() if x.startswith("verify cap"))
    si = parse_verify_cap(vcap).storage_index
    c = paid.ledger()
    leases = {lid: c.lease(lid) for lid in c.leases_of(u.address)}
    assert len(leases) == 10 and all(le is not None for le in leases.values())
    ok = paid.as_user(u, "audit", vcap, "--rounds", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # A lying auditor (the payer itself) challenges an honest node on the ledger: the node answers
    # by itself with the block the ledger picked and its proof, and the lease cannot be failed.
    chain, fee = c.chain, PARAMS.min_fee
    honest = paid.storage()[1]
    hlid, _ = _lease_of(paid, c, u.address, honest)
    c.wait_committed(c.submit_with_nonce(u.key, lambda n: T.lease_challenge(u.key, chain, n, 2 * fee, hlid))[0])
    _wait_for(lambda: not c.lease(hlid).challenge_open(), "the honest node did not answer")  # type: ignore[union-attr]
    le = c.lease(hlid)
    assert le is not None and le.status == 0 and le.answered == 1
    with pytest.raises(LedgerError) as e:
        c.submit_with_nonce(u.key, lambda n: T.lease_fail(u.key, chain, n, fee, hlid))
    assert e.value.code == "no_challenge"

    # One node loses its share.
    spec = paid.storage()[0]
    victim_lid, victim = _lease_of(paid, c, u.address, spec)
    sdir = paid.devnet.node_dir(spec) / "storage" / "slots" / si.hex()[:2] / si.hex()
    share = next(p for p in sdir.glob("*/*") if p.name.isdigit())
    shnum = int(share.name)
    share.unlink()
    before = c.account(u.address)["balance"]
    bad = paid.as_user(u, "audit", vcap, "--wait")  # challenged on the ledger, waits out the window
    assert bad.returncode == 1
    text = bad.stdout.decode()
    assert f"share {shnum:>3}" in text and "FAILED" in text and "lease failed on the ledger" in text, text
    assert "9 passed, 1 failed" in text, text
    failed = c.lease(victim_lid)
    assert failed is not None and failed.status == 1 and failed.failed_at > 0
    # The part not yet earned at the challenge went back to the uploader (less the challenge's
    # and the failure's fees).
    refund = victim.amount - failed.accrued(failed.failed_at)
    assert c.account(u.address)["balance"] - before == refund - 3 * fee
    # The node earns nothing more from that lease, however long it waits; the others keep earning.
    assert failed.accrued(failed.end) == failed.accrued(failed.failed_at)
    other = next(le for le in leases.values() if le is not None and le.payee != victim.payee)
    assert other.accrued(other.end) == other.amount
    # Its claim pays at most what it had earned before the failure.
    node_before = c.account(victim.payee)
    paid.veil("node", "earnings", "--data", str(paid.devnet.node_dir(spec)), check=True)
    node_after = c.account(victim.payee)
    gained = node_after["balance"] - node_before["balance"] + (node_after["nonce"] - node_before["nonce"]) * PARAMS.min_fee
    assert gained <= failed.accrued(failed.failed_at) + sum(  # plus any serving settled meanwhile
        ch.free_bytes + ch.paid for cid, ch in c.account(victim.payee)["channels"])
    # A failed lease is not challenged again.
    again = paid.as_user(u, "audit", vcap)
    assert again.returncode == 0 and "9 passed, 0 failed" in again.stdout.decode()
    c.close()


def test_a_lost_leased_share_is_repaired_from_its_lease_escrow(paid: PaidDevnet, tmp_path: Path) -> None:
    """Issue 18 item 12: `veil audit --wait --repair` repairs the file and, instead of refunding the
    failed node's unearned escrow, moves it on the ledger (lease_move) to the share's new holder,
    less the repair's cost, which goes back to the auditor. The new holder answers its challenges."""
    u = paid.wallet("mover", fund=10 * UNIT)
    src = tmp_path / "heal.bin"
    src.write_bytes(os.urandom(1_000_000))
    out = paid.as_user(u, "put", str(src), "--lease", "30", check=True).stdout.decode()
    vcap = next(x.split()[-1] for x in out.splitlines() if x.startswith("verify cap"))
    rcap = next(x.split()[-1] for x in out.splitlines() if x.startswith("read cap"))
    si = parse_verify_cap(vcap).storage_index
    c = paid.ledger()
    spec = paid.storage()[3]
    victim_lid, victim = _lease_of(paid, c, u.address, spec)
    sdir = paid.devnet.node_dir(spec) / "storage" / "slots" / si.hex()[:2] / si.hex()
    share = next(p for p in sdir.glob("*/*") if p.name.isdigit())
    shnum = int(share.name)
    share.unlink()
    r = paid.as_user(u, "audit", vcap, "--wait", "--repair")
    text = r.stdout.decode()
    assert r.returncode == 0, text + r.stderr.decode()
    assert f"share {shnum:>3}" in text and "lease moved to" in text and "(1 repaired, lease moved)" in text, text
    failed = c.lease(victim_lid)
    assert failed is not None and failed.status == 1
    unearned = victim.amount - failed.accrued(failed.failed_at)
    moved = [(lid, le) for lid in c.leases_of(u.address) if (le := c.lease(lid)) is not None
             and le.root == victim.root and le.status == 0]  # fmt: skip
    assert len(moved) == 1
    mlid, mle = moved[0]
    assert mle.payee != victim.payee and mle.payer == u.address and mle.end == victim.end
    assert 0 < mle.amount <= unearned  # the rest of the escrow, less the repair fee paid back to the auditor
    # The new holder keeps the share and answers the ledger's challenge of the moved lease by itself.
    chain, fee = c.chain, PARAMS.min_fee
    c.wait_committed(c.submit_with_nonce(u.key, lambda n: T.lease_challenge(u.key, chain, n, 2 * fee, mlid))[0])
    _wait_for(lambda: not c.lease(mlid).challenge_open(), "the new holder did not answer")  # type: ignore[union-attr]
    le = c.lease(mlid)
    assert le is not None and le.status == 0 and le.answered == 1
    back = tmp_path / "heal.out"
    paid.as_user(u, "get", rcap, "-o", str(back), "--max-spend", "1", check=True)
    assert back.read_bytes() == src.read_bytes()
    c.close()


def test_payer_closes_a_channel_cooperatively_with_the_cli(paid: PaidDevnet, tmp_path: Path) -> None:
    """`veil channel close ID` as payer, before expiry: the payee node consents to its latest
    cheque, the channel closes at once, the node is paid that cheque and the rest comes back."""
    up = paid.wallet("coop-up", fund=10 * UNIT)
    dl = paid.wallet("coop-dl", fund=10 * UNIT)
    src = tmp_path / "coop.bin"
    src.write_bytes(os.urandom(10_000_000))  # more than the allowance: paid bytes too
    cap = put_json(paid.as_user(up, "put", "--json", str(src), check=True))["read cap"]
    paid.as_user(dl, "get", cap, "-o", str(tmp_path / "o.bin"), "--max-spend", "5", check=True)
    c = paid.ledger()
    book = PayerChannels(dl.channels_path, dl.key)
    try:
        cid, pc = next((pc.id, pc) for pc in book.all() if pc.amount > 0)
    finally:
        book.close()
    ch = c.channel(cid)
    assert ch is not None and int(c.info()["now"]) < ch.expires
    before = c.account(dl.address)["balance"]
    p = paid.as_user(dl, "channel", "close", cid.hex())
    assert p.returncode == 0, p.stderr
    assert b"closed with the payee's consent" in p.stdout, p.stdout
    assert c.channel(cid) is None
    # Whatever the node had settled before, the payer got back exactly the deposit not paid out.
    assert c.account(dl.address)["balance"] - before == pc.deposit - pc.amount - PARAMS.min_fee
    paid.veil("ledger", "verify", check=True)
    # Bad requests to the consent endpoint get a clear 4xx, nothing else.
    net = load_network(paid.devnet.static_network_path)
    node = next(n for n in net.nodes if "storage" in n.roles)
    for body, want in (({"channel": b"short"}, "close request"), ({"channel": bytes(32)}, "no open channel"),
                       ({"nope": 1}, "close request")):  # fmt: skip
        with pytest.raises(VeilError) as e:
            net.client(node).call("POST", "/v1/pay/close", body)
        assert want in str(e.value), str(e.value)
    net.close()
    c.close()


def test_a_downloader_with_no_funds_uses_its_free_allowance(paid: PaidDevnet, tmp_path: Path) -> None:
    """Issue 10: free bytes need no deposit. An account holding no money, only a (sponsored) stake,
    downloads within its allowance over free-tier channels (deposit 0, fee 0)."""
    up = paid.wallet("free-up", fund=10 * UNIT)
    poor = paid.wallet("free-dl")
    c = paid.ledger()
    key = load_faucet_key(paid.devnet.node_dir(validator_spec(paid.devnet)))
    chain = c.chain
    c.wait_committed(c.submit_with_nonce(key, lambda n: T.stake(key, chain, n, PARAMS.min_fee, PARAMS.allowance_stake,
                                                                 poor.address))[0])  # fmt: skip
    acct = c.account(poor.address)
    assert acct["balance"] == 0 and acct["allowance_left"] == ALLOWANCE
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(1_000_000))
    cap = put_json(paid.as_user(up, "put", "--json", str(src), check=True))["read cap"]
    out = tmp_path / "small.out"
    paid.as_user(poor, "get", cap, "-o", str(out), check=True)
    assert out.read_bytes() == src.read_bytes()
    chans = channels_of(c, poor.address)
    assert chans and all(ch.total_deposit == 0 for _, ch in chans)
    acct = c.account(poor.address)
    assert acct["balance"] == 0  # nothing was paid: no deposit, no fee
    paid.settle_all()
    assert c.account(poor.address)["allowance_left"] < ALLOWANCE  # the nodes were paid from the allowance
    c.close()


@pytest.mark.timeout(900)  # ten `node earnings` settlements on a loaded machine
def test_get_and_account_agree_to_the_byte_in_json(paid: PaidDevnet, tmp_path: Path) -> None:
    """`veil get --json` (allowance used, money spent), `veil account --json` and `veil node earnings
    --json` tell the same story as the ledger, to the byte and the unit (docs/specs/cli-json.md)."""
    up = paid.wallet("json-up", fund=2 * UNIT)
    dl = paid.wallet("json-dl", fund=5 * UNIT)
    src = tmp_path / "agree.bin"
    src.write_bytes(os.urandom(10_000_000))  # past the 8 MB allowance: free bytes, then paid ones
    cap = put_json(paid.as_user(up, "put", "--json", str(src), "--payout", "wallet", check=True))["read cap"]
    before = json.loads(paid.as_user(dl, "account", "--json", check=True).stdout)
    got = json.loads(paid.as_user(dl, "get", cap, "-o", str(tmp_path / "agree.out"), "--json", "--max-spend", "5",
                                  check=True).stdout)  # fmt: skip
    assert got["v"] == 1 and got["written"] == 10_000_000 and got["resumed_from"] == 0
    assert got["free_used"] > 0 and got["paid_bytes"] > 0 and got["spent"] == got["paid_bytes"]  # 1 unit per byte
    paid.settle_all()
    after = json.loads(paid.as_user(dl, "account", "--json", "--unlock", check=True).stdout)
    assert before["allowance_left"] - after["allowance_left"] == got["free_used"]
    assert after["spent_settled"] == after["spent_in_cheques"] == got["spent"]
    c = paid.ledger()
    try:
        chans = channels_of(c, dl.address)
        assert after["locked"] == sum(ch.deposit for _, ch in chans) and len(after["channels"]) == len(chans)
        for s in paid.storage():
            st = paid.veil("node", "earnings", "--data", str(paid.devnet.node_dir(s)), "--no-settle", "--json")
            assert st.returncode == 0, st.stderr.decode()
            e = json.loads(st.stdout)
            assert e["v"] == 1 and e["payee"] == encode_address(paid.node_addr(s))
            assert isinstance(e["balance"], int) and isinstance(e["channels"], list)
    finally:
        c.close()
