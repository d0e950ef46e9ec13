"""Issue 19 items 8 and 10: a crafted key file cannot make the client run argon2 with huge costs
the bounds are checked on the header before anything is derived, with one clear error."""

from __future__ import annotations

import resource
import struct
from pathlib import Path

import pytest

from veil.client.wallet import create_wallet, open_wallet
from veil.crypto import passphrase
from veil.errors import IntegrityError

HEAD = 8 + 1 + 32  # wallet magic, version, public key; then the sealed object


def _craft(path: Path, t: int, m: int, p: int) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into(">IIB", raw, HEAD + 5, t, m, p)  # after the sealed object's magic and version
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("t", "m", "p"),
    [(3, 4 * 1024 * 1024, 1), (64, 1024, 1), (1, 1024, 16), (16, 256 * 1024, 1), (0, 1024, 1), (1, 4, 1)],
)
def test_a_crafted_wallet_is_refused_before_argon2_runs(tmp_path: Path, t: int, m: int, p: int) -> None:
    w = tmp_path / "w.wallet"
    create_wallet(w, "pw", m_cost_kib=1024)
    _craft(w, t, m, p)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(IntegrityError, match="argon2 costs out of range"):
        open_wallet(w, "pw")
    # Nothing near the asked-for memory was touched (ru_maxrss is in KiB on Linux).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


def test_costs_at_the_bounds_still_open_and_seal_refuses_outside(tmp_path: Path) -> None:
    w = tmp_path / "w.wallet"
    create_wallet(w, "pw", m_cost_kib=1024)
    assert open_wallet(w, "pw").address
    with pytest.raises(ValueError):
        passphrase.seal("pw", b"x", b"ctx", m_cost_kib=passphrase.MAX_M_COST_KIB + 1)
    assert passphrase.cost_in_bounds(passphrase.DEFAULT_T_COST, passphrase.DEFAULT_M_COST_KIB, 1)
    assert passphrase.cost_in_bounds(4, passphrase.MAX_M_COST_KIB, 1)
    assert not passphrase.cost_in_bounds(5, passphrase.MAX_M_COST_KIB, 1)


def test_a_manifest_under_a_foreign_storage_index_is_refused() -> None:
    """Issue 19 item 8: the manifest's si is checked against the cap's (the key commitment)."""
    from veil.format.manifest import Manifest, manifest_hash, parse_manifest

    m = Manifest(si=bytes(16), k=1, n=1, happy=1, segsize=4096, size=10, bsize=26, lbsize=26, roots=(bytes(32),),
                 segroot=bytes(32), meta=b"m").to_bytes()  # fmt: skip
    assert parse_manifest(m, manifest_hash(m), bytes(16)).si == bytes(16)
    with pytest.raises(IntegrityError, match="another storage index"):
        parse_manifest(m, manifest_hash(m), bytes([1]) * 16)
