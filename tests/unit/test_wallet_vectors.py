"""Wallet vectors (tests/vectors/wallet_v1.json, made by tests/vectors/make_wallet_vectors.py) on the
Python side, the vendored argon2id's hashes, and `veil wallet import|export` (the key file the web
wallet shares with the CLI; docs/specs/wallet.md)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from veil.client.wallet import create_wallet, open_wallet
from veil.crypto.sign import SigningKey
from veil.errors import UsageError
from veil.ledger import tx as txm
from veil.ledger.address import AddressError, decode_address, encode_address
from veil.ledger.amount import AmountError, format_amount, parse_amount
from veil.ledger.invoice import PaymentUriError, parse_payment_uri

ROOT = Path(__file__).parents[2]
V = json.loads((ROOT / "tests" / "vectors" / "wallet_v1.json").read_text())
VENDOR = ROOT / "src" / "veil" / "gateway" / "static" / "vendor" / "noble-hashes"


def test_the_vectors_are_what_the_generator_makes() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "vectors" / "make_wallet_vectors.py")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert json.loads(out) == V


def test_python_reads_its_own_vectors(tmp_path: Path) -> None:
    path = tmp_path / "w"
    path.write_bytes(bytes.fromhex(V["key_file"]))
    w = open_wallet(path, V["passphrase"])
    assert w.key.seed.hex() == V["seed"] and w.address_text == V["address_text"]
    for t in V["transfers"]:
        tx = txm.decode_tx(bytes.fromhex(t["raw"]))
        tx.verify_signature()
        assert (str(tx.amount), str(tx.nonce), str(tx.fee), tx.memo or "") == (t["amount"], t["nonce"], t["fee"], t["memo"] or "")
        assert tx.txid.hex() == t["id"] and tx.to.hex() == V["to"] and tx.invoice.hex() == t.get("invoice", "")
    for r in V["requests"]:
        req = parse_payment_uri(r["uri"])
        assert (str(req.amount), req.memo, str(req.expires), req.invoice.hex()) == (r["amount"], r["memo"], r["expires"], V["invoice"])
        assert req.uri() == r["uri"]
    for bad in V["bad_uris"]:
        with pytest.raises(PaymentUriError):
            parse_payment_uri(bad)
    for a in V["addresses"]:
        assert decode_address(a["text"]).hex() == a["address"]
    for bad in V["bad_addresses"]:
        with pytest.raises(AddressError):
            decode_address(bad)
    for bad in V["bad_amounts"]:
        with pytest.raises(AmountError):
            parse_amount(bad)
    assert [format_amount(int(u)) for u, _ in V["formatted"]] == [f for _, f in V["formatted"]]


def test_vendored_argon2_is_the_published_files() -> None:
    table = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", (VENDOR / "VENDOR.md").read_text(), re.M))
    assert set(table) == {"argon2.js", "blake2.js", "_blake.js", "_md.js", "_u64.js", "utils.js", "LICENSE"}
    for name, digest in table.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, f"{name} was changed"
    from veil.gateway.wallet import VENDOR_FILES

    assert set(VENDOR_FILES) == set(table)


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """`veil ARGS` in a process of its own (exit codes and error lines as a user gets them)."""
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **env})  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def test_cli_export_and_import_round_trip(tmp_path: Path) -> None:
    src = create_wallet(tmp_path / "a.wallet", "pw one", m_cost_kib=1024)
    env = {"VEIL_PASSPHRASE": "pw one", "VEIL_HOME": str(tmp_path)}
    code, out = _run(["wallet", "export", "--wallet", str(src.path), "-o", str(tmp_path / "out.key")], env)
    assert code == 0 and (tmp_path / "out.key").read_bytes() == src.path.read_bytes()
    assert (tmp_path / "out.key").stat().st_mode & 0o777 == 0o600
    code, out = _run(["wallet", "export", "--wallet", str(src.path), "-o", str(tmp_path / "out.key")], env)
    assert code == 2 and "exists" in out
    code, out = _run(["wallet", "import", str(tmp_path / "out.key"), "--wallet", str(tmp_path / "b.wallet")], env)
    assert code == 0 and src.address_text in out
    assert open_wallet(tmp_path / "b.wallet", "pw one").key.seed == src.key.seed
    # never over an existing wallet, never with the wrong passphrase, never a file that is not a wallet
    code, out = _run(["wallet", "import", str(tmp_path / "out.key"), "--wallet", str(tmp_path / "b.wallet")], env)
    assert code == 2 and "already exists" in out
    code, out = _run(["wallet", "import", str(tmp_path / "out.key"), "--wallet", str(tmp_path / "c.wallet")],
                     {**env, "VEIL_PASSPHRASE": "nope"})  # fmt: skip
    assert code == 3 and "wrong passphrase" in out and not (tmp_path / "c.wallet").exists()
    (tmp_path / "junk").write_bytes(b"not a wallet at all")
    code, out = _run(["wallet", "import", str(tmp_path / "junk"), "--wallet", str(tmp_path / "c.wallet")], env)
    assert code == 3 and "not a Veil wallet" in out


def test_the_browser_key_file_vector_imports_with_the_cli(tmp_path: Path) -> None:
    (tmp_path / "browser.key").write_bytes(bytes.fromhex(V["key_file"]))
    code, out = _run(["wallet", "import", str(tmp_path / "browser.key"), "--wallet", str(tmp_path / "w")],
                     {"VEIL_PASSPHRASE": V["passphrase"]})  # fmt: skip
    assert code == 0 and V["address_text"] in out
    assert encode_address(bytes.fromhex(V["address"])) == V["address_text"]
    assert SigningKey(bytes.fromhex(V["seed"])).public_key.hex() == V["public_key"]
    with pytest.raises(UsageError):
        from veil.client.wallet import import_wallet

        import_wallet(tmp_path / "w", tmp_path / "w", V["passphrase"])
