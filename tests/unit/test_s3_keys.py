"""The S3 endpoint's sealed keys file and the CLI's one-line errors for bad setups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from veil.errors import UsageError
from veil.format.folder_caps import new_folder
from veil.s3.keys import load_keys, new_key, save_keys
from veil.s3.meta import MetaStore, ObjectMeta, cap_id


def test_keys_round_trip_sealed_and_wrong_passphrase(tmp_path: Path) -> None:
    root = new_folder().to_string()
    keys = [new_key("a", root), new_key("b", root)]
    path = tmp_path / "s3" / "keys.sealed"
    save_keys(path, "pw", keys, m_cost_kib=1024)
    assert load_keys(path, "pw") == keys
    raw = path.read_bytes()
    assert keys[0].secret.encode() not in raw and root.encode() not in raw
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(UsageError, match="wrong passphrase"):
        load_keys(path, "other")
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(UsageError):
        load_keys(path, "pw")
    assert keys[0].access_key.startswith("VK") and len(keys[0].access_key) == 20 and keys[0].access_key != keys[1].access_key


def test_meta_store_holds_no_cap(tmp_path: Path) -> None:
    m = MetaStore(tmp_path / "meta.sqlite")
    m.put("veil:r1:secretcap", ObjectMeta('"abc"', {"x-amz-meta-a": "1"}, (5, 6)))
    assert m.get("veil:r1:secretcap") == ObjectMeta('"abc"', {"x-amz-meta-a": "1"}, (5, 6))
    assert m.get("veil:r1:other").etag == f'"{cap_id("veil:r1:other")[:32]}"'
    m.close()
    assert b"secretcap" not in (tmp_path / "meta.sqlite").read_bytes()


def test_serve_without_keys_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "VEIL_HOME": str(tmp_path), "VEIL_PASSPHRASE": "x"}
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "s3", "serve"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "veil s3 keys add" in lines[0]
