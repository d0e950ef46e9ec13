"""The web wallet (/wallet, docs/specs/wallet.md) in chromium against the browser tests' devnet:
the page's formats against Python's byte for byte, create → faucet → send → history, the key
file moving both ways between the page and `veil wallet`, a wrong passphrase, and every byte
the gateway received holding no form of the key, the passphrase or the key file."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from gateway_browser import ARTIFACTS, Env, RecordingProxy
from playwright.sync_api import Page

from veil.client.wallet import create_wallet, open_wallet, wallet_address
from veil.crypto.sign import SigningKey
from veil.ledger import tx as txm
from veil.ledger.address import address_of, encode_address
from veil.ledger.amount import UNIT

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "wallet_v1.json").read_text())
PASS = "page pass ☃ 42"
MIN_FEE = 1  # the devnet's (Params default)


@pytest.fixture(autouse=True)
def _patient_page(request: pytest.FixtureRequest) -> None:
    """argon2id over 64 MiB in the page takes many seconds on a loaded machine: every action may wait."""
    if "page" in request.fixturenames:
        request.getfixturevalue("page").set_default_timeout(180_000)


def _veil(env: Env, *args: str, wallet: Path, passphrase: str = PASS, check: bool = True) -> str:
    saved = dict(env.env)
    env.env.update({"VEIL_WALLET": str(wallet), "VEIL_PASSPHRASE": passphrase})
    try:
        p = env.veil(*args, check=check)
    finally:
        env.env.clear()
        env.env.update(saved)
    return (p.stdout + p.stderr).decode()


def _balance(env: Env, wallet: Path) -> int:
    from veil.devnet.ledger import devnet_ledger_client

    c = devnet_ledger_client(env.devnet)
    try:
        return int(c.account(wallet_address(wallet))["balance"])
    finally:
        c.close()


def _wait_units(page: Page, units: int, timeout: float = 120_000) -> None:
    page.wait_for_selector(f"#balance[data-units='{units}']", timeout=timeout)


def _create_in_page(page: Page, origin: str, passphrase: str = PASS) -> str:
    page.goto(origin + "/wallet")
    page.wait_for_selector("body[data-loaded='1']")
    page.fill("#create-pass", passphrase)
    page.fill("#create-pass2", passphrase)
    page.click("#create")
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    return page.get_attribute("body", "data-address") or ""


def _send_in_page(page: Page, to: str, amount: str, memo: str = "", passphrase: str | None = None) -> None:
    before = page.get_attribute("body", "data-sent")
    page.evaluate("delete document.body.dataset.error")
    page.fill("#send-to", to)
    page.fill("#send-amount", amount)
    page.fill("#send-memo", memo)
    if passphrase is not None:
        page.fill("#send-pass", passphrase)
    page.click("#send")
    page.wait_for_function("(b) => document.body.dataset.sent && document.body.dataset.sent !== b || document.body.dataset.error",
                           arg=before, timeout=120_000)  # fmt: skip
    err = page.get_attribute("body", "data-error")
    assert err is None, page.inner_text("#message")


def _error_after(page: Page, action: Any) -> tuple[str, str]:
    page.evaluate("delete document.body.dataset.error")
    action()
    page.wait_for_selector("body[data-error]", timeout=120_000)
    return page.get_attribute("body", "data-error") or "", page.inner_text("#message")


def test_page_matches_the_wallet_vectors(env: Env, page: Page) -> None:
    """veil-wallet.js against tests/vectors/wallet_v1.json (made by Python), byte for byte, in chromium."""
    page.goto(env.gateway + "/wallet")
    page.wait_for_selector("body[data-loaded='1']")
    got = page.evaluate("""async (V) => {
      const vw = await import("/static/veil-wallet.js");
      const vf = await import("/static/veil-format.js");
      const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
      const out = {};
      const file = unhex(V.key_file);
      const w = await vw.openWalletFile(V.passphrase, file);
      out.pub = vf.hex(w.publicKey);
      out.created = w.created;
      const made = await vw.makeWalletFile(V.passphrase, unhex(V.seed), { cost: V.cost, created: V.created,
                                            salt: unhex(V.salt), nonce: unhex(V.nonce) });
      out.file = vf.hex(made.file);
      out.address = vf.hex(await vw.addressOf(w.publicKey));
      out.addressText = await vw.encodeAddress(await vw.addressOf(w.publicKey));
      out.to = vf.hex(await vw.decodeAddress(V.to_text.toUpperCase()));
      out.txs = [];
      for (const t of V.transfers) {
        const body = vw.transferBody({ chain: V.chain, publicKey: w.publicKey, nonce: BigInt(t.nonce), fee: BigInt(t.fee),
                                       to: unhex(V.to), amount: BigInt(t.amount), memo: t.memo,
                                       extra: t.invoice ? { invoice: unhex(t.invoice) } : {} });
        const s = await vw.signTx(w.signer, body);
        out.txs.push([vf.hex(s.raw), vf.hex(s.id)]);
      }
      out.addresses = [];
      for (const a of V.addresses) out.addresses.push(await vw.encodeAddress(await vw.addressOf(unhex(a.public_key))));
      const fails = async (f) => { try { await f(); return "accepted"; } catch (e) { return e.kind || e.message; } };
      out.badAddresses = [];
      for (const a of V.bad_addresses) out.badAddresses.push(await fails(() => vw.decodeAddress(a)));
      out.requests = [];
      for (const r of V.requests) {
        const q = await vw.parsePaymentUri(r.uri);
        out.requests.push([q.amount.toString(), q.memo, q.expires.toString(), vf.hex(q.invoice), vf.hex(q.payee), await vw.paymentUri(q)]);
      }
      out.badUris = [];
      for (const u of V.bad_uris) out.badUris.push(await fails(() => vw.parsePaymentUri(u)));
      out.amounts = V.amounts.map(([t]) => vw.parseAmount(t).toString());
      out.badAmounts = [];
      for (const a of V.bad_amounts) out.badAmounts.push(await fails(() => vw.parseAmount(a)));
      out.formatted = V.formatted.map(([u]) => vw.formatAmount(BigInt(u)));
      const flip = (i) => { const b = file.slice(); b[i] ^= 1; return b; };
      const withCost = (m) => { const b = file.slice(); new DataView(b.buffer).setUint32(41 + 9, m); return b; };
      out.tamper = {
        wrongPass: await fails(() => vw.openWalletFile(V.passphrase + "x", file)),
        emptyPass: await fails(() => vw.openWalletFile("", file)),
        ciphertext: await fails(() => vw.openWalletFile(V.passphrase, flip(file.length - 1))),
        publicKey: await fails(() => vw.openWalletFile(V.passphrase, flip(12))),
        salt: await fails(() => vw.openWalletFile(V.passphrase, flip(41 + 14))),
        hugeCost: await fails(() => vw.openWalletFile(V.passphrase, withCost(1 << 30))),
        magic: await fails(() => vw.openWalletFile(V.passphrase, flip(0))),
        version: await fails(() => vw.openWalletFile(V.passphrase, flip(8))),
        truncated: await fails(() => vw.openWalletFile(V.passphrase, file.subarray(0, 60))),
        notAFile: await fails(() => vw.openWalletFile(V.passphrase, new TextEncoder().encode("hello"))),
      };
      out.memoTooLong = await fails(() => vw.transferBody({ chain: V.chain, publicKey: w.publicKey, nonce: 0n, fee: 1n,
                                                           to: unhex(V.to), amount: 1n, memo: "x".repeat(257) }));
      return out;
    }""", VECTORS)
    V = VECTORS
    assert got["pub"] == V["public_key"] and got["created"] == V["created"]
    assert got["file"] == V["key_file"]
    assert got["address"] == V["address"] and got["addressText"] == V["address_text"] and got["to"] == V["to"]
    assert got["txs"] == [[t["raw"], t["id"]] for t in V["transfers"]]
    assert got["requests"] == [[r["amount"], r["memo"], r["expires"], V["invoice"], V["to"], r["uri"]] for r in V["requests"]]
    assert got["badUris"] == ["garbled"] * len(V["bad_uris"])
    assert got["addresses"] == [a["text"] for a in V["addresses"]]
    assert got["badAddresses"] == ["garbled"] * len(V["bad_addresses"])
    assert got["amounts"] == [u for _, u in V["amounts"]]
    assert got["badAmounts"] == ["garbled"] * len(V["bad_amounts"])
    assert got["formatted"] == [f for _, f in V["formatted"]]
    assert got["tamper"] == {"wrongPass": "wrongpass", "emptyPass": "wrongpass", "ciphertext": "wrongpass",
                             "publicKey": "wrongpass", "salt": "wrongpass", "hugeCost": "integrity", "magic": "notwallet",
                             "version": "notwallet", "truncated": "integrity", "notAFile": "notwallet"}, got["tamper"]
    assert got["memoTooLong"] == "refused"
    # And what the page signed is a transaction the ledger's own decoder accepts and verifies.
    t = txm.decode_tx(bytes.fromhex(got["txs"][-2][0]))
    t.verify_signature()
    assert (t.amount, t.to.hex(), t.nonce) == (2**63 - 1, V["to"], 2**40 + 5)
    t = txm.decode_tx(bytes.fromhex(got["txs"][-1][0]))
    t.verify_signature()
    assert (t.amount, t.memo, t.invoice.hex()) == (5 * UNIT, "order 1234", V["invoice"])


def test_create_receive_send_export_and_the_gateway_never_sees_the_key(env: Env, page: Page, tmp_path: Path) -> None:
    proxy = RecordingProxy(env.branded_port)
    cli_payee = create_wallet(tmp_path / "payee.wallet", PASS, m_cost_kib=1024)
    try:
        origin = f"http://127.0.0.1:{proxy.port}"
        addr = _create_in_page(page, origin)
        assert page.title() == "Alpha Files wallet" and "Alpha terms" in page.inner_text("footer")  # the tenant's brand
        assert addr.startswith("vb1") and page.inner_text("#address") == addr
        _wait_units(page, 0)
        assert page.is_visible("#history-empty")

        env.veil("devnet", "faucet", addr, "25")
        _wait_units(page, 25 * UNIT)
        assert int(page.get_attribute("#allowance", "data-left") or 0) > 0  # the faucet staked for the allowance
        assert "renews" in page.inner_text("#allowance")
        page.wait_for_selector("#history tbody tr[data-direction='in']")

        # A reload locks the key: sending then asks for the passphrase, and a wrong one is a clear message.
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.get_attribute("body", "data-unlocked") == "0"
        kind, text = _error_after(page, lambda: (page.fill("#send-to", cli_payee.address_text), page.fill("#send-amount", "3.5"),
                                                 page.fill("#send-pass", "not it"), page.click("#send")))  # fmt: skip
        assert kind == "wrongpass" and "Wrong passphrase" in text and "wrong passphrase" in text
        # Typos are caught in the page before anything is signed.
        bad_to = cli_payee.address_text[:-1] + ("a" if cli_payee.address_text[-1] != "a" else "b")
        kind, text = _error_after(page, lambda: (page.fill("#send-to", bad_to), page.click("#send")))
        assert kind == "garbled" and "checksum" in text
        kind, text = _error_after(page, lambda: (page.fill("#send-to", cli_payee.address_text),
                                                 page.fill("#send-amount", "0.0000000001"), page.click("#send")))
        assert kind == "garbled" and "decimal places" in text
        kind, text = _error_after(page, lambda: (page.fill("#send-amount", "1000"), page.fill("#send-pass", PASS),
                                                 page.click("#send")))
        assert kind == "insufficient_funds", text
        assert page.get_attribute("body", "data-unlocked") == "1"

        _send_in_page(page, cli_payee.address_text, "3.5", memo="for the CLI ☃")
        _wait_units(page, 25 * UNIT - 3_500_000_000 - MIN_FEE)
        out_row = page.locator("#history tbody tr[data-direction='out']").first
        assert out_row.get_attribute("data-amount") == "3500000000" and "for the CLI ☃" in out_row.inner_text()
        assert _balance(env, cli_payee.path) == 3_500_000_000
        assert "3.5 VEIL" in _veil(env, "wallet", "balance", wallet=cli_payee.path)
        page.screenshot(path=str(ARTIFACTS / "gateway-wallet.png"), full_page=True)

        # Export the key file, use it from the CLI: same address, and it can spend.
        with page.expect_download() as dl:
            page.click("#export")
        exported = tmp_path / "exported.key"
        dl.value.save_as(exported)
        cli_copy = tmp_path / "from-browser.wallet"
        assert addr in _veil(env, "wallet", "import", str(exported), wallet=cli_copy)
        assert _veil(env, "wallet", "address", wallet=cli_copy).strip() == addr
        _veil(env, "wallet", "send", cli_payee.address_text, "1", "--memo", "from the CLI", wallet=cli_copy)
        _wait_units(page, 25 * UNIT - 4_500_000_000 - 2 * MIN_FEE)
        page.wait_for_selector("#history tbody tr:has-text('from the CLI')")
        seed = open_wallet(cli_copy, PASS).key.seed
    finally:
        proxy.close()

    wire = bytes(proxy.received)
    log = env.branded_log.read_bytes()
    assert b"POST /api/wallet/tx" in wire and b"GET /api/wallet/account/" in wire  # the recording saw the traffic
    key_file = exported.read_bytes()
    sealed = key_file[41:]
    forms = [seed, seed.hex().encode(), seed.hex().upper().encode(), base64.b64encode(seed),
             base64.urlsafe_b64encode(seed).rstrip(b"="), PASS.encode(), json.dumps(PASS).encode(),
             sealed[:48], base64.b64encode(key_file)[:60], key_file.hex().encode()[:120]]
    for form in forms:
        assert form not in wire, "key material reached the gateway"
        assert form not in log, "key material in the gateway's log"


def test_import_a_cli_key_file_under_another_brand(env: Env, page: Page, tmp_path: Path) -> None:
    cli = tmp_path / "cli.wallet"
    out = _veil(env, "wallet", "create", wallet=cli, passphrase="cli pass")  # the CLI's default argon2 cost
    address = out.split("address:")[1].strip()
    env.veil("devnet", "faucet", address, "7")
    page.goto(env.host_url("beta.localhost") + "/wallet")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.title() == "Beta Vault wallet"
    junk = tmp_path / "not-a-wallet.key"
    junk.write_bytes(b"hello, I am a text file\n")
    page.set_input_files("#import-file", str(junk))
    kind, text = _error_after(page, lambda: (page.fill("#import-pass", "cli pass"), page.click("#import")))
    assert kind == "notwallet" and "not a Veil wallet" in text
    page.set_input_files("#import-file", str(cli))
    kind, text = _error_after(page, lambda: (page.fill("#import-pass", "wrong"), page.click("#import")))
    assert kind == "wrongpass" and "Wrong passphrase" in text
    assert page.is_visible("#setup-view")  # nothing was stored
    page.fill("#import-pass", "cli pass")
    page.click("#import")
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    assert page.get_attribute("body", "data-address") == address
    _wait_units(page, 7 * UNIT)
    friend = encode_address(address_of(SigningKey.generate().public_key))
    _send_in_page(page, friend, "2.25")  # unlocked by the import
    _wait_units(page, 7 * UNIT - 2_250_000_000 - MIN_FEE)
    assert _balance(env, cli) == 7 * UNIT - 2_250_000_000 - MIN_FEE
    # The browser keeps it across a reload (encrypted), and can remove it.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.get_attribute("body", "data-address") == address
    page.once("dialog", lambda d: d.accept())
    page.click("#forget")
    page.wait_for_selector("#setup-view:not([hidden])")
    assert page.evaluate("localStorage.length") == 0


def _http(method: str, url: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_wallet_api_refuses_bad_input(env: Env) -> None:
    gw = env.gateway
    key = SigningKey.generate()
    me = encode_address(address_of(key.public_key))
    status, info = _http("GET", f"{gw}/api/wallet/info")
    assert status == 200 and info["decimals"] == 9 and int(info["min_fee"]) >= 0
    status, acct = _http("GET", f"{gw}/api/wallet/account/{me}")
    assert status == 200 and acct["balance"] == "0" and acct["nonce"] == "0" and isinstance(acct["allowance_left"], str)
    assert _http("GET", f"{gw}/api/wallet/account/{me[:-1]}x")[0] == 400
    assert _http("GET", f"{gw}/api/wallet/account/{'a' * 500}")[0] == 400
    assert _http("GET", f"{gw}/api/wallet/history/{me}?limit=0")[0] == 400
    assert _http("GET", f"{gw}/api/wallet/history/{me}")[1]["txs"] == []
    chain, to = info["chain"], address_of(SigningKey.generate().public_key)
    good = txm.transfer(key, chain, 0, 1, to, 5)
    assert _http("POST", f"{gw}/api/wallet/tx", good, "application/json")[0] == 415
    assert _http("POST", f"{gw}/api/wallet/tx", good, "text/plain")[0] == 415
    status, err = _http("POST", f"{gw}/api/wallet/tx", b"\x00garbage", "application/cbor")
    assert (status, err["error"]) == (400, "malformed")
    forged = bytearray(good)
    forged[-1] ^= 1
    status, err = _http("POST", f"{gw}/api/wallet/tx", bytes(forged), "application/cbor")
    assert (status, err["error"]) == (400, "bad_signature")
    stake = txm.stake(key, chain, 0, 1, 5)
    status, err = _http("POST", f"{gw}/api/wallet/tx", stake, "application/cbor")
    assert (status, err["error"]) == (400, "not_a_transfer")
    status, err = _http("POST", f"{gw}/api/wallet/tx", good, "application/cbor")  # well-formed, but no money
    assert (status, err["error"]) == (400, "insufficient_funds"), err
    status, err = _http("POST", f"{gw}/api/wallet/tx", b"\xa0" * (txm.MAX_TX_SIZE + 1), "application/cbor")
    assert status == 413


def _fields(out: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if k.strip() in
            ("invoice", "uri", "link", "checkout", "qr", "amount", "expires")}  # fmt: skip


def _status(env: Env, wallet: Path, inv: str) -> dict[str, Any]:
    rows = [json.loads(x) for x in _veil(env, "invoice", "list", "--json", wallet=wallet).splitlines() if x.startswith("{")]
    return next(r for r in rows if r["id"] == inv)


def test_invoices_paid_by_link_in_the_web_wallet_and_by_the_cli(env: Env, page: Page, tmp_path: Path) -> None:
    from veil.devnet.ledger import devnet_ledger_client
    from veil.ledger.invoice import parse_payment_uri

    payee = create_wallet(tmp_path / "shop.wallet", PASS, m_cost_kib=1024)
    buyer = create_wallet(tmp_path / "buyer.wallet", PASS, m_cost_kib=1024)
    env.veil("devnet", "faucet", buyer.address_text, "20")
    out = _veil(env, "invoice", "create", "--amount", "5", "--memo", "order 1234", "--expires", "1h",
                "--qr", str(tmp_path / "order.svg"), wallet=payee.path)  # fmt: skip
    f = _fields(out)
    assert "▀" in out or "█" in out or "▄" in out  # the QR code, in the terminal
    assert (tmp_path / "order.svg").read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    req = parse_payment_uri(f["uri"])
    assert (req.payee, req.amount, req.memo, req.invoice_text) == (payee.address, 5 * UNIT, "order 1234", f["invoice"])
    assert f["link"] == f"{env.gateway}/wallet#{f['uri']}"
    assert f["checkout"] == f"{env.gateway}/pay/{f['invoice']}#{f['uri']}"
    assert _status(env, payee.path, f["invoice"])["status"] == "open"
    png = _veil(env, "invoice", "create", "--amount", "0.5", "--no-qr", "--qr", str(tmp_path / "b.png"), wallet=payee.path)
    assert "█" not in png and (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The web wallet opens the link, shows what is asked, refuses an altered request, and pays.
    _create_in_page(page, env.gateway)
    env.veil("devnet", "faucet", page.get_attribute("body", "data-address") or "", "20")
    _wait_units(page, 20 * UNIT)
    altered = f["uri"].replace("amount=5000000000", "amount=500000000")
    kind, text = _error_after(page, lambda: (page.fill("#request-uri", altered), page.click("#request-open")))
    assert kind == "garbled" and "altered" in text and page.is_hidden("#pay-request")
    page.goto(f["link"])
    page.wait_for_selector(f"#pay-request[data-invoice='{f['invoice']}']")
    assert page.inner_text("#req-amount") == "5 VEIL" and page.inner_text("#req-memo") == "order 1234"
    assert page.inner_text("#req-to") == payee.address_text
    page.click("#req-pay")
    page.wait_for_selector(f"body[data-paid='{f['invoice']}']", timeout=120_000)
    row = _status(env, payee.path, f["invoice"])
    assert (row["status"], row["received"], row["credit"]) == ("paid", 5 * UNIT, 0)
    assert "status:   paid" in _veil(env, "invoice", "show", f["invoice"][:12], wallet=payee.path)
    assert page.is_disabled("#req-pay")  # paid: not twice by accident
    page.wait_for_selector(f"#history tbody tr:has-text('Invoice {f['invoice']}')")
    page.screenshot(path=str(ARTIFACTS / "gateway-wallet-invoice.png"), full_page=True)

    # Paid twice (now by the CLI): overpaid, and the second payment is refundable credit.
    assert "paid 5 VEIL" in _veil(env, "pay", f["uri"], wallet=buyer.path)
    row = _status(env, payee.path, f["invoice"])
    assert (row["status"], row["received"], row["credit"]) == ("overpaid", 10 * UNIT, 5 * UNIT)
    assert len(row["payments"]) == 2
    bad = _veil(env, "pay", altered, wallet=buyer.path, check=False)
    assert "altered" in bad and "Traceback" not in bad

    # Expired: the CLI and the page refuse to pay; a payment sent anyway is late, and credit.
    short = _fields(_veil(env, "invoice", "create", "--amount", "1", "--expires", "2s", "--no-qr", wallet=payee.path))
    expiry = parse_payment_uri(short["uri"]).expires
    c = devnet_ledger_client(env.devnet)
    try:
        while time.time() <= expiry + 1:
            time.sleep(0.2)  # wait for the condition: the expiry has passed (blocks take this clock's time)
        p = env.veil("pay", short["uri"], check=False)
        assert p.returncode == 2 and b"expired" in p.stderr
        page.goto(env.gateway + "/wallet#" + short["uri"])
        page.wait_for_selector("#pay-request[data-expired='1']")
        assert page.is_disabled("#req-pay")
        late = parse_payment_uri(short["uri"])
        key = open_wallet(buyer.path, PASS).key
        c.submit_with_nonce(key, lambda n: txm.transfer(key, c.chain, n, MIN_FEE, late.payee, late.amount, None, late.invoice))
        # Underpaid: part of a third invoice.
        third = parse_payment_uri(_fields(_veil(env, "invoice", "create", "--amount", "3", "--no-qr", wallet=payee.path))["uri"])
        c.submit_with_nonce(key, lambda n: txm.transfer(key, c.chain, n, MIN_FEE, third.payee, UNIT, None, third.invoice))
    finally:
        c.close()
    row = _status(env, payee.path, short["invoice"])
    assert (row["status"], row["received"], row["late"], row["credit"]) == ("expired", 0, UNIT, UNIT)
    row = _status(env, payee.path, third.invoice_text)
    assert (row["status"], row["received"], row["credit"]) == ("underpaid", UNIT, 0)
    assert _balance(env, payee.path) == 10 * UNIT + 2 * UNIT


def test_checkout_page_shows_the_request_and_turns_paid(env: Env, page: Page, tmp_path: Path) -> None:
    shop = create_wallet(tmp_path / "shop2.wallet", PASS, m_cost_kib=1024)
    f = _fields(_veil(env, "invoice", "create", "--amount", "1.25", "--memo", "cart 77", "--expires", "30m", "--no-qr",
                      wallet=shop.path))  # fmt: skip
    # No wallet in this browser yet: the checkout shows the request and the wallet's setup below it.
    page.goto(f["checkout"])
    page.wait_for_selector("#co-status[data-status='open']", timeout=60_000)
    assert page.inner_text("#co-amount") == "1.25 VEIL" and page.inner_text("#co-memo") == "cart 77"
    assert page.inner_text("#co-to") == shop.address_text and page.inner_text("#co-id") == f["invoice"]
    assert "min" in page.inner_text("#co-countdown")
    page.wait_for_function("document.getElementById('co-qr').complete && document.getElementById('co-qr').naturalWidth > 0")
    assert page.is_visible("#setup-view")
    page.fill("#create-pass", PASS)
    page.fill("#create-pass2", PASS)
    page.click("#create")
    page.wait_for_selector(f"#pay-request[data-invoice='{f['invoice']}']", timeout=120_000)
    env.veil("devnet", "faucet", page.get_attribute("body", "data-address") or "", "3")
    _wait_units(page, 3 * UNIT)
    page.click("#req-pay")
    page.wait_for_selector("#co-status[data-status='paid']", timeout=120_000)
    assert page.inner_text("#co-status") == "Paid"
    assert _status(env, shop.path, f["invoice"])["status"] == "paid"
    page.screenshot(path=str(ARTIFACTS / "gateway-checkout.png"), full_page=True)
    # A link whose path and request disagree, and an altered request, are refused with the reason.
    other = _fields(_veil(env, "invoice", "create", "--amount", "1", "--no-qr", wallet=shop.path))
    page.goto(f"{env.gateway}/pay/{other['invoice']}#{f['uri']}")
    page.wait_for_selector("body[data-error='garbled']")
    assert "differ" in page.inner_text("#message")
    status, err = _http("GET", f"{env.gateway}/api/wallet/invoice?uri=" + urllib.parse.quote(f["uri"].replace("cart%2077", "cart%2078")))
    assert status == 400 and "altered" in err["message"]
    assert _http("GET", f"{env.gateway}/api/wallet/qr?uri=hello")[0] == 400
