"""A real validator process (`veil node run --role validator`) over TLS on 127.0.0.1: two
wallets through the CLI, a channel with 1,000 cheques, exact balances, full replay; and a
SIGKILL under load that loses nothing committed or accepted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.client.channels import PayerChannels
from veil.client.ledger_client import LedgerClient
from veil.client.wallet import open_wallet, wallet_address
from veil.crypto.sign import SigningKey
from veil.devnet.ledger import load_faucet_key, make_node_genesis
from veil.devnet.specs import free_port
from veil.errors import LedgerError
from veil.ledger import tx as T
from veil.ledger.address import address_of, encode_address
from veil.ledger.amount import UNIT
from veil.ledger.chain import Replayer
from veil.ledger.channelbook import ChannelBook
from veil.ledger.cheque_store import SqliteChequeStore
from veil.ledger.genesis import Genesis
from veil.ledger.params import Params

pytestmark = pytest.mark.integration
PARAMS = Params(chain_id="itest", min_fee=1000, price_per_gb=10**8, allowance_bytes=10**9, uploader_share_bp=2000)
SENDERS = [SigningKey(bytes([i + 1]) * 32) for i in range(20)]


class Validator:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.genesis: Genesis

    def start(self) -> None:
        (self.data / "node.json").unlink(missing_ok=True)
        log = open(self.data / "node.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "node", "run", "--data", str(self.data),
             "--listen", f"127.0.0.1:{self.port}", "--role", "validator"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while not (self.data / "node.json").exists():
            assert self.proc.poll() is None, (self.data / "node.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "validator did not start"
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    @property
    def endpoint(self) -> str:
        node_id = json.loads((self.data / "node.json").read_text())["node_id"]
        return f"{node_id}@127.0.0.1:{self.port}"

    def client(self) -> LedgerClient:
        return LedgerClient.from_endpoint(self.endpoint, self.genesis.hash)


@pytest.fixture
def validator(tmp_path: Path) -> Iterator[Validator]:
    v = Validator(tmp_path / "validator")
    v.genesis = make_node_genesis(
        v.data, PARAMS, faucet_amount=10**9 * UNIT, pool=10**6 * UNIT,
        extra_mints={address_of(s.public_key): 10 * UNIT for s in SENDERS}, api=f"127.0.0.1:{v.port}",
    )  # fmt: skip
    v.start()
    try:
        yield v
    finally:
        if v.proc is not None and v.proc.poll() is None:
            v.kill(signal.SIGTERM)


def veil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True, text=True, timeout=120)


def fund(v: Validator, addr: bytes, amount: int) -> None:
    key = load_faucet_key(v.data)
    c = v.client()
    try:
        c.submit_with_nonce(key, lambda n: T.transfer(key, c.chain, n, 1000, addr, amount))
    finally:
        c.close()


def replay_all(c: LedgerClient) -> Replayer:
    r = Replayer(c.genesis())
    for h in range(1, int(c.info()["final"]) + 1):
        blk = c.block(h)
        assert blk is not None
        r.apply_block(*blk)
    r.check_supply()
    return r


def test_two_wallets_send_channel_1000_cheques_close(validator: Validator, tmp_path: Path) -> None:
    env = {**os.environ, "VEIL_PASSPHRASE": "pw", "VEIL_VALIDATOR": validator.endpoint, "VEIL_HOME": str(tmp_path / "home"),
           "VEIL_GENESIS": validator.genesis.hash.hex()}
    wa, wb = str(tmp_path / "a.wallet"), str(tmp_path / "b.wallet")
    for w in (wa, wb):
        p = veil(env, "wallet", "create", "--wallet", w)
        assert p.returncode == 0, p.stderr
    a, b = wallet_address(Path(wa)), wallet_address(Path(wb))
    b_text = encode_address(b)
    assert veil(env, "wallet", "address", "--wallet", wb).stdout.strip() == b_text
    fund(validator, a, 1000 * UNIT)

    p = veil(env, "wallet", "send", b_text, "12.5", "--memo", "rent", "--wallet", wa)
    assert p.returncode == 0, p.stderr
    p = veil(env, "channel", "open", b_text, "100", "--expires-in", "1d", "--wallet", wa)
    assert p.returncode == 0, p.stderr
    cid = bytes.fromhex(p.stdout.split()[1])

    # 1,000 cheques: the payer persists before signing, the payee's book persists before acking.
    wallet_a = open_wallet(Path(wa), "pw")
    payer = PayerChannels(wallet_a.channels_path, wallet_a.key)
    c = validator.client()
    ch = c.channel(cid)
    assert ch is not None
    book = ChannelBook(c.genesis().params, b, SqliteChequeStore(tmp_path / "b-cheques.db"))
    book.track(cid, ch)
    uploader = address_of(SigningKey(b"\x77" * 32).public_key)
    now = int(c.info()["now"])
    for i in range(1000):
        free = 1_000_000 if i < 500 else 0  # the first 500 blocks ride on the free allowance
        paid = 0 if i < 500 else 50_000_000  # 0.05 VEIL per paid block
        chq = payer.pay(cid, amount=paid, free_bytes=free, paid_bytes=1_000_000 if paid else 0, uploader=uploader)
        rec = book.accept(chq.raw, now)
        assert rec.delta.paid == paid
    payer.close()
    latest = book.latest(cid)
    assert latest is not None and latest.seq == 1000
    p = veil(env, "channel", "close", cid.hex(), "--cheque", latest.raw.hex(), "--wallet", wb)
    assert p.returncode == 0, p.stderr

    paid_total = 500 * 50_000_000  # 25 VEIL
    up_share = paid_total * 2000 // 10_000  # 5 VEIL
    free_pay = 0  # b is no registered, bonded node: the pool pays it nothing for free bytes
    fee = PARAMS.min_fee
    acct_a, acct_b, acct_u = c.account(a), c.account(b), c.account(uploader)
    assert acct_a["balance"] == 1000 * UNIT - 12_500_000_000 - fee - 100 * UNIT - fee + (100 * UNIT - paid_total)
    assert acct_b["balance"] == 12_500_000_000 + paid_total - up_share + free_pay - fee
    assert acct_u["balance"] == up_share
    assert acct_a["allowance_left"] == 0  # a holds no stake: no allowance
    assert acct_a["channels"] == []

    p = veil(env, "ledger", "verify", "--quiet")
    assert p.returncode == 0, p.stderr
    r = replay_all(c)
    assert p.stdout.strip().endswith(r.state.state_hash.hex())
    hist = veil(env, "wallet", "history", "--wallet", wa)
    assert "memo: rent" in hist.stdout and "closed" in hist.stdout
    # Bad input: one clear line, non-zero exit, nothing moves.
    p = veil(env, "wallet", "send", "vb1nope", "1", "--wallet", wa)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    p = veil(env, "wallet", "send", b_text, "100000", "--wallet", wa)
    assert p.returncode == 8 and "insufficient" not in p.stdout and p.stderr.startswith("veil: error:")
    assert c.account(a)["balance"] == acct_a["balance"]
    c.close()


def test_unpinned_endpoints_and_unpinned_or_fake_genesis_are_refused(validator: Validator, tmp_path: Path) -> None:
    """Issue 19 item 4: a ledger endpoint without NODEID@ is refused (option and environment), and
    `veil ledger verify` needs the genesis hash pinned and refuses a chain that is not it."""
    home = {**os.environ, "VEIL_HOME": str(tmp_path / "home")}
    bare = f"127.0.0.1:{validator.port}"
    p = veil(home, "ledger", "info", "--validator", bare)
    assert p.returncode == 2 and "not pinned" in p.stderr and p.stderr.count("\n") == 1
    p = veil({**home, "VEIL_VALIDATOR": bare}, "ledger", "info")
    assert p.returncode == 2 and "not pinned" in p.stderr
    pinned = {**home, "VEIL_VALIDATOR": validator.endpoint}
    p = veil(pinned, "ledger", "verify")
    assert p.returncode == 2 and "pin the chain" in p.stderr
    p = veil({**pinned, "VEIL_GENESIS": "ab" * 32}, "ledger", "verify")  # the validator serves another genesis
    assert p.returncode == 8 and "not the pinned" in p.stderr
    p = veil({**pinned, "VEIL_GENESIS": validator.genesis.hash.hex()}, "ledger", "verify")
    assert p.returncode == 0, p.stderr


def test_payer_closes_cooperatively_with_the_payees_consent(validator: Validator, tmp_path: Path) -> None:
    """channel_close on a real validator: the payee's consent to its latest cheque closes the channel
    at once; an older cheque or a forged consent is refused with its code; the chain replays."""
    from veil.client.channel_close import close_tx, parse_consent
    from veil.ledger.close_consent import sign_consent
    from veil.ledger.state import channel_id

    payer_key, payee_key = SigningKey(b"\x61" * 32), SigningKey(b"\x62" * 32)
    pa, pb = address_of(payer_key.public_key), address_of(payee_key.public_key)
    fund(validator, pa, 10 * UNIT)
    c = validator.client()
    chain, fee = c.chain, PARAMS.min_fee
    _, nonce = c.submit_with_nonce(payer_key, lambda n: T.channel_open(payer_key, chain, n, fee, pb, 5 * UNIT,
                                                                       int(c.info()["now"]) + 86_400))  # fmt: skip
    cid = channel_id(pa, nonce)
    ch = c.channel(cid)
    assert ch is not None
    payer = PayerChannels(tmp_path / "p.channels", payer_key)
    payer.record(cid, chain, ch)
    book = ChannelBook(c.genesis().params, pb, SqliteChequeStore(tmp_path / "payee.db"))
    book.track(cid, ch)
    old = payer.pay(cid, UNIT, 0, 1)
    book.accept(old.raw, 0)
    book.accept(payer.pay(cid, UNIT, 0, 1).raw, 0)
    latest, sig = book.consent_close(payee_key, cid)
    assert latest is not None and latest.amount == 2 * UNIT
    consent = parse_consent({"payee_key": payee_key.public_key, "consent": sig, "cheque": latest.raw}, chain, cid, ch)
    forged = sign_consent(SigningKey(b"\x63" * 32), chain, cid, old.seq, old.raw)
    for raw in (T.channel_close(payer_key, chain, nonce + 1, fee, cid, old, payee_key.public_key, sig),
                T.channel_close(payer_key, chain, nonce + 1, fee, cid, old, payee_key.public_key, forged)):
        with pytest.raises(LedgerError) as e:
            c.submit(raw)
        assert e.value.code == "bad_consent"
    before = c.account(pa)["balance"]
    c.wait_committed(c.submit_with_nonce(payer_key, lambda n: close_tx(payer_key, chain, fee, cid, consent, n))[0])
    assert c.channel(cid) is None
    assert c.account(pb)["balance"] == 2 * UNIT
    assert c.account(pa)["balance"] == before - fee + 3 * UNIT
    payer.close()
    replay_all(c)
    c.close()
