"""One size parser, one HOST:PORT parser, one atomic write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from veil.durable import write_atomic, write_json_atomic
from veil.errors import UsageError
from veil.format.textparse import parse_hostport, parse_size


@pytest.mark.parametrize(("text", "value"), [
    ("1048576", 1048576), ("2GiB", 2 << 30), ("2 gib", 2 << 30), ("100GB", 100 * 10**9),
    ("4MB", 4_000_000), ("4mib", 4 << 20), ("512k", 512_000), ("0", 0), ("1_000", 1000),
])
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "GB", "-1", "1.5GB", "2 parsecs", "１GB", "9" * 30])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError, match="bad size"):
        parse_size(text)


def test_hostports() -> None:
    assert parse_hostport("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_hostport("[::1]:9000") == ("::1", 9000)
    assert parse_hostport(":9000") == ("127.0.0.1", 9000)
    assert parse_hostport("h:0", allow_zero=True) == ("h", 0)
    for bad in ("h", "h:0", "h:65536", "h:x", "a b:1", "u@h:1", "h:１"):
        with pytest.raises(UsageError):
            parse_hostport(bad)


def test_atomic_write_replaces_and_tightens_mode(tmp_path: Path) -> None:
    p = tmp_path / "d" / "key.pem"
    p.parent.mkdir()
    p.write_bytes(b"old")
    os.chmod(p, 0o666)
    write_atomic(p, b"new", 0o600)
    assert p.read_bytes() == b"new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert [x.name for x in p.parent.iterdir()] == ["key.pem"]
    write_json_atomic(tmp_path / "v.json", {"b": 1, "a": 2})
    assert (tmp_path / "v.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_exclusive_never_replaces(tmp_path: Path) -> None:
    p = tmp_path / "wallet"
    write_atomic(p, b"first", 0o600, exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(p, b"second", 0o600, exclusive=True)
    assert p.read_bytes() == b"first"
    assert [x.name for x in tmp_path.iterdir()] == ["wallet"]
