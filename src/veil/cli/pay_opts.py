"""Payment plumbing for `veil put` and `veil get`: payout address, spending limit, the payer
and a progress bar that shows the free allowance used and the money spent."""

from __future__ import annotations

import contextlib
from pathlib import Path

from veil.client.config import payment_setting, payout_setting
from veil.client.ledger_client import LedgerClient
from veil.client.network import Network
from veil.client.payer import Payer
from veil.client.wallet import Wallet, default_wallet_path, open_wallet, wallet_address
from veil.ledger.address import decode_address
from veil.ledger.amount import format_amount, parse_amount

from .common import Bar, human, progress_bar
from .ledger_opts import passphrase


def payout_address(payout: str | None, wallet: Path | None) -> bytes | None:
    """The payout address `veil put` writes into the manifest: none unless asked for.

    ``--payout ADDR`` (or ``wallet``: this user's wallet address, no passphrase needed), else the
    ``VEIL_PAYOUT`` / ``[payments] payout`` setting, else none. The default is none because the
    manifest is readable by every node, gateway and verify-cap holder: a payout address there
    links all of one person's uploads to one public ledger account (docs/specs/payments.md)."""
    choice = payout if payout is not None else payout_setting()
    if choice.lower() == "none":
        return None
    if choice.lower() == "wallet":
        return wallet_address(wallet or default_wallet_path())
    return decode_address(choice)


def make_payer(net: Network, max_spend: str | None, wallet: Path | None) -> Payer | None:
    """A payer when the network has a ledger; the wallet is unlocked only if a node charges."""
    validators = [n for n in net.nodes if "validator" in n.roles]
    if not validators:
        return None
    limit = parse_amount(max_spend) if max_spend is not None else payment_setting("max_spend")
    path = wallet or default_wallet_path()

    def unlock() -> Wallet:
        wallet_address(path)  # a clear "no wallet, create one" before any passphrase prompt
        return open_wallet(path, passphrase())

    return Payer(
        unlock,
        LedgerClient([(v.host, v.port, v.node_id) for v in validators], _genesis_pin(net)),
        max_spend=limit,
        deposit=max(1, min(limit, payment_setting("deposit"))),
        deposit_floor=payment_setting("deposit_floor"),
    )


def download_bar(label: str, quiet: bool, payer: Payer | None) -> contextlib.AbstractContextManager[Bar]:
    """common.progress_bar, with the allowance used and money spent in the description."""

    def describe() -> str | None:
        if payer is not None and (payer.free_used or payer.spent):
            return f"{label} · free {human(payer.free_used)} · spent {format_amount(payer.spent)} VEIL"
        return None

    return progress_bar(label, None, quiet, describe)


def spend_summary(payer: Payer | None) -> str:
    if payer is None or not (payer.free_used or payer.spent or payer.paid_bytes):
        return ""
    return (f"; allowance used {human(payer.free_used)}, paid {human(payer.paid_bytes)} "
            f"for {format_amount(payer.spent)} VEIL")  # fmt: skip


def _genesis_pin(net: Network) -> bytes | None:
    pin = net.extra.get("genesis")
    return bytes.fromhex(pin) if isinstance(pin, str) and len(pin) == 64 else None
