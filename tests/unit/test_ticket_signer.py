"""Who signs `veil`'s storage tickets (cli/signer.py): the wallet when one is chosen or exists,
else a devnet's uploader key named in its network file, else nobody (a clear 'no wallet')."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.cli.signer import ticket_signer
from veil.client.network import Network, load_network
from veil.client.tickets import read_uploader_key, write_uploader_key
from veil.client.wallet import create_wallet
from veil.errors import IntegrityError, UsageError


def _net(tmp_path: Path, key: Path | None) -> Network:
    p = tmp_path / "network.json"
    p.write_text('{"nodes": [], "id_bits": 0%s}' % (f', "devnet_uploader": "{key}"' if key else ""))
    return load_network(p)


def test_the_devnet_key_signs_only_when_no_wallet_was_chosen_or_exists(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("VEIL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VEIL_WALLET", raising=False)
    monkeypatch.setenv("VEIL_PASSPHRASE", "pw")
    dev = write_uploader_key(tmp_path / "uploader.key")
    assert write_uploader_key(tmp_path / "uploader.key").public_key == dev.public_key  # made once
    net = _net(tmp_path, tmp_path / "uploader.key")
    assert net.tickets is not None and net.tickets.key().public_key == dev.public_key  # library users too
    assert ticket_signer(None, net).key().public_key == dev.public_key
    with pytest.raises(UsageError, match="no wallet"):  # a real network names no uploader key
        ticket_signer(None, _net(tmp_path, None)).key()
    with pytest.raises(UsageError, match="no wallet"):  # a wallet named but missing: no silent fallback
        ticket_signer(tmp_path / "missing.wallet", net).key()
    monkeypatch.setenv("VEIL_WALLET", str(tmp_path / "missing.wallet"))
    with pytest.raises(UsageError, match="no wallet"):
        ticket_signer(None, net).key()
    monkeypatch.delenv("VEIL_WALLET")
    w = create_wallet(tmp_path / "home" / "wallet", "pw", m_cost_kib=1024)  # the default wallet exists: it signs
    assert ticket_signer(None, net).key().public_key == w.key.public_key
    (tmp_path / "bad.key").write_bytes(b"VLID\x01" + bytes(32))
    with pytest.raises(IntegrityError, match="not a Veil uploader key"):
        read_uploader_key(tmp_path / "bad.key")
