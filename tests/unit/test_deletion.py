"""Deletion keys (docs/specs/caps.md, "Deletion keys"): derivation, the manifest's commitment,
and deleting through the in-memory grid — by the uploader only."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from veil.client.deletion import delete_file, deletion_secret
from veil.client.download import download
from veil.client.upload import SMALL_FILE, upload
from veil.errors import IntegrityError, NotAllowedError, NotFoundError, UsageError
from veil.format.deletion import deletion_commitment, deletion_key, key_matches, parse_deletion_key
from veil.format.manifest import parse_manifest
from veil.testing.grid import Grid

SECRET = bytes(range(32))


def test_keys_are_per_file_and_commitments_do_not_open_to_other_keys() -> None:
    k1, k2 = deletion_key(SECRET, b"\x01" * 16), deletion_key(SECRET, b"\x02" * 16)
    assert k1 != k2 and len(k1) == 32 and deletion_key(SECRET, b"\x01" * 16) == k1
    assert deletion_key(b"\xff" * 32, b"\x01" * 16) != k1  # another uploader's secret
    c = deletion_commitment(k1)
    assert c not in (k1, SECRET) and key_matches(k1, c)
    assert not key_matches(k2, c) and not key_matches(k1, None) and not key_matches(k1[:31], c)
    with pytest.raises(UsageError):
        deletion_key(b"short", b"\x01" * 16)
    assert parse_deletion_key(k1.hex()) == k1
    for bad in ("", "zz" * 32, k1.hex()[:-2]):
        with pytest.raises(UsageError):
            parse_deletion_key(bad)


@pytest.mark.parametrize("size", [5000, SMALL_FILE + 200_000])  # one-shot and streamed uploads
def test_only_the_uploaders_key_deletes(tmp_path: Path, size: int) -> None:
    g = Grid(tmp_path, 10)
    try:
        net = g.network()
        data = os.urandom(size)
        res = upload(net, io.BytesIO(data), size, "f.bin", deletion=SECRET, segment_size=256 * 1024)
        man = parse_manifest(res.manifest.to_bytes())
        key = deletion_key(SECRET, man.si)
        assert man.delete == deletion_commitment(key)
        vc = res.cap.verify_cap()
        with pytest.raises(NotAllowedError):
            delete_file(net, vc, deletion_key(b"\x07" * 32, man.si))
        out = io.BytesIO()
        download(g.network(), res.cap, out)
        assert out.getvalue() == data  # a refused delete changed nothing
        gone = delete_file(net, vc, key)
        assert gone.shares == 10 and not gone.refused
        with pytest.raises(NotFoundError):
            download(g.network(), res.cap, io.BytesIO())
        with pytest.raises(NotFoundError):
            delete_file(net, vc, key)
    finally:
        g.close()


def test_a_file_uploaded_without_a_secret_cannot_be_deleted(tmp_path: Path) -> None:
    g = Grid(tmp_path, 10)
    try:
        net = g.network()
        res = upload(net, io.BytesIO(b"x" * 100), 100, "f.bin")
        assert res.manifest.delete is None
        with pytest.raises(NotAllowedError):
            delete_file(net, res.cap.verify_cap(), deletion_key(SECRET, res.manifest.si))
    finally:
        g.close()


def test_tampered_commitment_breaks_the_manifest_hash() -> None:
    from veil.format.manifest import Manifest

    m = Manifest(si=b"\x01" * 16, k=1, n=1, happy=1, segsize=4096, size=10, bsize=26, lbsize=26,
                 roots=(b"\x02" * 32,), segroot=b"\x03" * 32, meta=b"m", delete=b"\x04" * 32)  # fmt: skip
    raw = m.to_bytes()
    assert parse_manifest(raw, m.hash()).delete == b"\x04" * 32
    i = raw.index(b"\x04" * 32)
    flipped = raw[:i] + b"\x05" + raw[i + 1:]
    with pytest.raises(IntegrityError):
        parse_manifest(flipped, m.hash())
    short = Manifest(**{**m.__dict__, "delete": b"\x04" * 31})
    with pytest.raises(IntegrityError):
        parse_manifest(short.to_bytes())


def test_the_secret_file_is_made_once_and_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_DELETE_KEY", str(tmp_path / "d" / "delete.key"))
    assert deletion_secret() is None
    s = deletion_secret(create=True)
    assert s is not None and len(s) == 32 and deletion_secret(create=True) == s
    assert (tmp_path / "d" / "delete.key").stat().st_mode & 0o777 == 0o600
    (tmp_path / "d" / "delete.key").write_text("nonsense")
    with pytest.raises(UsageError):
        deletion_secret()
