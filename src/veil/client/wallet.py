"""The wallet file: one Ed25519 account key, sealed under a passphrase.

Layout: magic ``VLWALLET`` | version u8 = 1 | public key (32) | a passphrase-sealed object
(crypto/passphrase.py: argon2id + AES-256-GCM, context ``veil/wallet/v1`` || public key)
whose plaintext is canonical CBOR ``{"seed": 32 bytes, "created": unix seconds}``. The
public key is in the clear so ``address`` and ``balance`` need no passphrase; it is bound
into the AEAD, and the opened seed must yield it, so swapping it is detected. The file is written to a
temporary name, fsynced and renamed, mode 0600; an existing wallet is never overwritten.

The browser's web wallet (docs/specs/wallet.md) writes and reads this same file, so a key moves
between them as the file: ``export_wallet`` copies it out as it is (still sealed), and
``import_wallet`` checks that a file opens with its passphrase before it becomes the wallet.

Where: ``--wallet``, else ``$VEIL_WALLET``, else ``$VEIL_HOME/wallet``. Passphrase:
``$VEIL_PASSPHRASE`` for scripts, else the caller prompts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from veil.crypto import labels, passphrase
from veil.crypto.sign import PUBLIC_KEY_SIZE, SigningKey
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError
from veil.format import cbor
from veil.ledger.address import address_of, encode_address

MAGIC = b"VLWALLET"
VERSION = 1
MAX_WALLET_FILE = 4096


def default_wallet_path() -> Path:
    env = os.environ.get("VEIL_WALLET")
    if env:
        return Path(env)
    home = os.environ.get("VEIL_HOME")
    return (Path(home) if home else Path.home() / ".veil") / "wallet"


@dataclass(frozen=True)
class Wallet:
    path: Path
    key: SigningKey

    @property
    def address(self) -> bytes:
        return address_of(self.key.public_key)

    @property
    def address_text(self) -> str:
        return encode_address(self.address)

    @property
    def channels_path(self) -> Path:
        """Where the payer side of this wallet's channels is kept (see client/channels.py)."""
        return self.path.with_name(self.path.name + ".channels")


def create_wallet(path: Path, secret: str, key: SigningKey | None = None, m_cost_kib: int | None = None) -> Wallet:
    if path.exists():
        raise UsageError(f"a wallet already exists at {path}; move it away first (it may hold money)")
    if not secret:
        raise UsageError("the passphrase must not be empty")
    key = key or SigningKey.generate()
    plain = cbor.encode({"seed": key.seed, "created": int(time.time())})
    kw = {} if m_cost_kib is None else {"m_cost_kib": m_cost_kib}
    blob = MAGIC + bytes([VERSION]) + key.public_key + passphrase.seal(secret, plain, labels.WALLET_AAD + key.public_key, **kw)
    try:
        write_atomic(path, blob, 0o600, exclusive=True)
    except FileExistsError as e:
        raise UsageError(f"a wallet already exists at {path}; move it away first (it may hold money)") from e
    return Wallet(path, key)


def _read(path: Path) -> tuple[bytes, bytes]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_WALLET_FILE + 1)
    except FileNotFoundError as e:
        raise UsageError(f"no wallet at {path}: create one with `veil wallet create`") from e
    head = len(MAGIC) + 1 + PUBLIC_KEY_SIZE
    if len(raw) > MAX_WALLET_FILE or not raw.startswith(MAGIC) or len(raw) < head:
        raise IntegrityError(f"{path} is not a Veil wallet")
    if raw[len(MAGIC)] != VERSION:
        raise IntegrityError(f"{path}: wallet version {raw[len(MAGIC)]} is not supported")
    return raw[len(MAGIC) + 1 : head], raw[head:]


def wallet_address(path: Path) -> bytes:
    """The wallet's address, without the passphrase."""
    return address_of(_read(path)[0])


def open_wallet(path: Path, secret: str) -> Wallet:
    pub, sealed = _read(path)
    plain = passphrase.open_sealed(secret, sealed, labels.WALLET_AAD + pub)
    v = cbor.decode(plain, 1024)
    if not isinstance(v, dict) or not isinstance(v.get("seed"), bytes) or len(v["seed"]) != 32:
        raise IntegrityError(f"{path}: wallet contents are malformed")
    key = SigningKey(v["seed"])
    if key.public_key != pub:
        raise IntegrityError(f"{path}: wallet is damaged (key does not match)")
    return Wallet(path, key)


def import_wallet(source: Path, path: Path, secret: str) -> Wallet:
    """Make the key file ``source`` (from `veil wallet export` or a browser's export) the wallet at
    ``path``: it must open with ``secret``; an existing wallet is never overwritten."""
    if source.resolve() == path.resolve():
        raise UsageError(f"{source} is already the wallet at {path}")
    w = open_wallet(source, secret)
    raw = source.read_bytes()
    if path.exists():
        raise UsageError(f"a wallet already exists at {path}; move it away first (it may hold money)")
    try:
        write_atomic(path, raw, 0o600, exclusive=True)
    except FileExistsError as e:
        raise UsageError(f"a wallet already exists at {path}; move it away first (it may hold money)") from e
    return Wallet(path, w.key)


def export_wallet(path: Path) -> bytes:
    """The wallet's key file as it is on disk (sealed under its passphrase), checked to be a wallet."""
    _read(path)
    with open(path, "rb") as f:
        return f.read(MAX_WALLET_FILE + 1)
