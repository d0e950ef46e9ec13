"""The endpoint's access keys: name, access key id, secret and the root folder (write cap) each
maps to, sealed under a passphrase in ``$VEIL_HOME/s3/keys.sealed`` (``veil.crypto.passphrase``:
Argon2id and AES-256-GCM). Several keys may map to separate roots: tenants that see only their
own buckets. The secret must be readable by the endpoint (SigV4 is an HMAC), so the file holds
it sealed, not hashed, and holds the root write caps too: the passphrase guards both.

Imports from: veil.errors, veil.crypto, veil.durable, veil.format.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from veil.crypto.labels import S3_KEYS
from veil.crypto.passphrase import open_sealed, seal
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError
from veil.format.folder_caps import FolderWriteCap, parse_folder_cap

CONTEXT = S3_KEYS
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class S3Key:
    name: str
    access_key: str
    secret: str
    root: str  # veil:fw1:... of the tenant's root folder

    def root_cap(self) -> FolderWriteCap:
        cap = parse_folder_cap(self.root)
        if not isinstance(cap, FolderWriteCap):
            raise UsageError(f"the root of S3 key {self.name!r} is not a folder write cap")
        return cap


def new_key(name: str, root: str) -> S3Key:
    access = "VK" + "".join(secrets.choice(_ALPHABET) for _ in range(18))
    return S3Key(name, access, secrets.token_urlsafe(30), root)


def default_path(home: Path) -> Path:
    return home / "s3" / "keys.sealed"


def load_keys(path: Path, passphrase: str) -> list[S3Key]:
    if not path.exists():
        return []
    try:
        raw = json.loads(open_sealed(passphrase, path.read_bytes(), CONTEXT))
        return [S3Key(k["name"], k["access_key"], k["secret"], k["root"]) for k in raw["keys"]]
    except IntegrityError as e:
        raise UsageError(f"cannot open {path}: {e}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"{path} is malformed: {e}") from e


def save_keys(path: Path, passphrase: str, keys: list[S3Key], m_cost_kib: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"keys": [k.__dict__ for k in keys]}).encode()
    blob = seal(passphrase, body, CONTEXT) if m_cost_kib is None else seal(passphrase, body, CONTEXT, m_cost_kib=m_cost_kib)
    write_atomic(path, blob, mode=0o600)
