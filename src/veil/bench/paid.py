"""`veil bench datapath --paid`: the same download with payments on, beside the free one.

A second devnet whose storage nodes charge (0.1 VEIL per GB) and whose allowance is 1 MB is
started. A funded wallet downloads the file twice. The first ("cold") download spends the
allowance and opens a channel to each node it fetches from: each open waits for a ledger block,
a one-time cost per node. The second ("steady") is paid entirely from those deposits: one
cheque per block-range request to each node, persisted by the client before signing and by
the node before serving; that is the per-block cost the ≥ 90% target is about. The free run is
the plain datapath run of the same invocation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from veil.client.channels import PayerChannels
from veil.client.wallet import create_wallet
from veil.devnet.ledger import DEVNET_CHAIN, faucet
from veil.devnet.manager import Devnet
from veil.ledger.amount import UNIT
from veil.ledger.params import Params

from .transfer import MB, MiB, transfer

PASSPHRASE = "bench"
PRICE = "0.1"
ALLOWANCE = 1_000_000
WARMUP = 16 * MiB


def paid_run(size: int, nodes: int, tmp: Path) -> dict[str, Any]:
    home = tmp / "paid-home"
    wallet = create_wallet(home / "wallet", PASSPHRASE, m_cost_kib=1024)
    env = {**os.environ, "VEIL_HOME": str(home), "VEIL_DEVNET": str(home / "devnet"), "VEIL_WALLET": str(wallet.path),
           "VEIL_PASSPHRASE": PASSPHRASE, "VEIL_MAX_SPEND": "1000", "VEIL_DEPOSIT": "10"}  # fmt: skip
    d = Devnet(home / "devnet")
    params = Params(chain_id=DEVNET_CHAIN, allowance_bytes=ALLOWANCE, price_per_gb=10**8)
    d.up(nodes, ["storage"], [], params=params, charge=["--price-per-gb", PRICE, "--free-credit", "1MB"])
    try:
        faucet(d, wallet.address, 10_000 * UNIT)
        transfer(WARMUP, tmp, env)  # spends most of the allowance
        book = PayerChannels(wallet.channels_path, wallet.key)
        before = sum(pc.amount for pc in book.all()), sum(pc.seq for pc in book.all())
        r = transfer(size, tmp, env, downloads=2)
        book.close()
        book = PayerChannels(wallet.channels_path, wallet.key)
        after = sum(pc.amount for pc in book.all()), sum(pc.seq for pc in book.all())
        book.close()
    finally:
        d.down()
    return {"paid_download_MBps": size / r["download_s"] / MB, "paid_upload_MBps": size / r["upload_s"] / MB,
            "paid_cold_download_MBps": size / r["download_times"][0] / MB,
            "paid_spent_units": after[0] - before[0], "paid_cheques": after[1] - before[1],
            "paid_download_rss_MB": r["download_rss"] / MB}  # fmt: skip


def paid_report(free: dict[str, Any], paid: dict[str, Any]) -> dict[str, Any]:
    ratio = paid["paid_download_MBps"] / free["download_MBps"]
    return {**paid, "free_download_MBps": free["download_MBps"], "paid_to_free": ratio, "target_paid_to_free": 0.9}
