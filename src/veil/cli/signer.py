"""Who signs the storage tickets of `veil`'s uploads (docs/specs/payments.md, "Storage admission").

The wallet (``--wallet``, ``VEIL_WALLET``, ``$VEIL_HOME/wallet``), unlocked only when a node first
asks for a ticket. When no wallet was chosen and none exists, and the network file is a devnet's
that names its uploader key (``devnet_uploader``: a key the devnet staked for), that key signs:
so `veil put` works on a fresh devnet, whose nodes admit storage by ticket by default.
"""

from __future__ import annotations

import os
from pathlib import Path

from veil.client.network import Network
from veil.client.tickets import Tickets, read_uploader_key
from veil.client.wallet import default_wallet_path, open_wallet, wallet_address
from veil.crypto.sign import SigningKey

from .ledger_opts import passphrase


def devnet_uploader(net: Network | None) -> Path | None:
    value = net.extra.get("devnet_uploader") if net is not None else None
    return Path(value) if isinstance(value, str) and value else None


def ticket_signer(wallet: Path | None, net: Network | None = None) -> Tickets:
    """Storage tickets signed by the wallet's key (or a devnet's uploader key, see above)."""
    path = wallet or default_wallet_path()
    chosen = wallet is not None or bool(os.environ.get("VEIL_WALLET"))

    def unlock() -> SigningKey:
        dev = devnet_uploader(net)
        if not chosen and dev is not None and not path.exists():
            return read_uploader_key(dev)
        wallet_address(path)  # a clear "no wallet, create one" before any passphrase prompt
        return open_wallet(path, passphrase()).key

    return Tickets(unlock)
