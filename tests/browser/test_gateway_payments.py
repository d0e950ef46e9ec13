"""A gateway in front of storage nodes that charge: with a funded wallet it pays (allowance
first) and the page shows what the download costs; without one the download is a clear 402
that the page explains. A charging devnet of its own (as tests/integration/test_payments_devnet.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gateway_browser import download_in_page, random_file, sha256_file, wait_http
from playwright.sync_api import Page

from veil.client.wallet import create_wallet
from veil.devnet.ledger import DEVNET_CHAIN, devnet_ledger_client, faucet
from veil.devnet.manager import Devnet
from veil.devnet.specs import free_port
from veil.ledger.amount import UNIT
from veil.ledger.params import Params

pytestmark = pytest.mark.browser

ALLOWANCE = 8_000_000
PARAMS = Params(chain_id=DEVNET_CHAIN, allowance_bytes=ALLOWANCE, price_per_gb=10**9, uploader_share_bp=2_000)
CHARGE = ["--price-per-gb", "1", "--free-credit", "4MB", "--lease-price-per-gb-day", "1"]
PASS = "correct horse"


@dataclass
class Charging:
    devnet: Devnet
    paying: str  # gateway with a funded wallet
    walletless: str  # gateway without one
    wallet_address: bytes
    link: str  # share link of a `veil put` file (on the devnet's own gateway)
    src: Path

    def at(self, gateway: str) -> str:
        return gateway + "/f/" + self.link.split("/f/", 1)[1]

    @property
    def verify(self) -> str:
        return self.link.split("/f/", 1)[1].split("#", 1)[0]


def _gateway(devnet: Devnet, env: dict[str, str], log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "gateway", "--listen", f"127.0.0.1:{port}",
             "--network", str(devnet.static_network_path), *extra],
            env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
        )
    return p, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def charging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charging]:
    home = tmp_path_factory.mktemp("veil-gw-pay")
    devnet = Devnet(home / "devnet")
    devnet.up(10, ["storage"], [], params=PARAMS, charge=CHARGE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        uploader = create_wallet(home / "up.wallet", PASS, m_cost_kib=1024)
        gw_wallet = create_wallet(home / "gw.wallet", PASS, m_cost_kib=1024)
        faucet(devnet, uploader.address, 10 * UNIT)
        faucet(devnet, gw_wallet.address, 10 * UNIT)
        env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet"), "VEIL_PASSPHRASE": PASS,
               "VEIL_DEPOSIT": "0.1"}
        src = random_file(home / "paid.bin", 2 * (1 << 20) + 99, seed=7)
        put = subprocess.run([sys.executable, "-m", "veil.cli.main", "put", "--json", str(src), "--payout", "wallet"],
                             env={**env, "VEIL_WALLET": str(uploader.path)}, capture_output=True, timeout=120)
        assert put.returncode == 0, put.stderr.decode()
        link = json.loads(put.stdout)["link"]
        p1, paying = _gateway(devnet, env, home / "paying.log", "--wallet", str(gw_wallet.path), "--max-spend", "1")
        procs.append(p1)
        p2, walletless = _gateway(devnet, {k: v for k, v in env.items() if k != "VEIL_PASSPHRASE"},
                                  home / "walletless.log")
        procs.append(p2)
        wait_http(paying + "/api/openapi.json")
        wait_http(walletless + "/api/openapi.json")
        yield Charging(devnet, paying, walletless, gw_wallet.address, link, src)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        devnet.down()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cost(gateway: str, verify: str) -> dict[str, Any]:
    status, body = get(f"{gateway}/api/files/{verify}/cost")
    assert status == 200, body
    value: dict[str, Any] = json.loads(body)
    return value


def test_a_gateway_with_a_wallet_pays_from_its_allowance(charging: Charging, page: Page, tmp_path: Path) -> None:
    c = cost(charging.paying, charging.verify)
    assert c["free"] is False and c["currency"] == "VEIL"
    assert c["price_per_gb"] == 10**9 and c["estimate"] == c["fetch_bytes"] > c["size"] == charging.src.stat().st_size
    assert c["allowance_left"] == ALLOWANCE
    got = download_in_page(page, charging.at(charging.paying), tmp_path / "got.bin")
    assert sha256_file(got) == sha256_file(charging.src)
    assert "Free for you: this site pays the network for it (about 0.0028 VEIL" in page.inner_text("#file-cost")
    assert "from its allowance first, within its limits" in page.inner_text("#file-cost")
    assert page.errors == []  # type: ignore[attr-defined]
    assert c["gateway_pays"] is True
    # The upload page advertises the allowance: visitors get it here, through the gateway's wallet.
    page.goto(charging.paying + "/")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.is_visible("#allowance")
    assert "free for the people you share with" in page.inner_text("#allowance")
    # The gateway's wallet opened channels to the nodes (their deposits left its balance).
    ledger = devnet_ledger_client(charging.devnet)
    assert ledger.account(charging.wallet_address)["balance"] < 10 * UNIT


def test_a_gateway_without_a_wallet_answers_402_and_the_page_says_why(charging: Charging, page: Page) -> None:
    c = cost(charging.walletless, charging.verify)
    assert c["free"] is False and c["estimate"] > 0 and c["allowance_left"] is None
    status, body = get(f"{charging.walletless}/api/files/{charging.verify}/segments?start=0")
    assert status == 402
    err = json.loads(body)
    assert err["error"] == "payment_required"
    assert err["message"] == "the nodes holding this file charge for downloads; this gateway has no wallet to pay with"
    page.goto(charging.at(charging.walletless))
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    # Never a price above "no wallet": the page says why not and what the visitor can do.
    assert c["gateway_pays"] is False
    assert page.inner_text("#file-cost") == "Not available through this site"
    assert "VEIL" not in page.inner_text("#file-view")
    page.wait_for_selector("#message[data-kind='payment']", timeout=60_000)
    message = page.inner_text("#message")
    assert "has no wallet to pay them" in message and "veil get" in message and "ask whoever runs this site" in message
    assert page.is_disabled("#download")
    # No allowance is advertised where visitors do not get it.
    page.goto(charging.walletless + "/")
    page.wait_for_selector("body[data-loaded='1']")
    assert not page.is_visible("#allowance")
    assert "Free downloads" not in page.inner_text("body")
