"""RFC 8032 Ed25519 vectors through every verifier the ledger uses (sign.verify, sigbatch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.crypto.sigbatch import verify_fast, verify_many
from veil.crypto.sign import SigningKey, is_valid

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "ed25519_rfc8032.json").read_text())["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc8032_vector(v: dict[str, str]) -> None:
    sk = SigningKey(bytes.fromhex(v["secret_key"]))
    pub, msg, sig = bytes.fromhex(v["public_key"]), bytes.fromhex(v["message"]), bytes.fromhex(v["signature"])
    assert sk.public_key == pub
    assert sk.sign(msg) == sig
    assert is_valid(pub, msg, sig)
    assert verify_fast(pub, msg, sig)
    bad = bytearray(sig)
    bad[0] ^= 1
    assert not verify_fast(pub, msg, bytes(bad))
    assert not verify_fast(pub, msg + b"x", sig)


def test_verify_many_matches_one_by_one() -> None:
    items = []
    for i, v in enumerate(VECTORS * 50):
        pub, msg, sig = bytes.fromhex(v["public_key"]), bytes.fromhex(v["message"]), bytes.fromhex(v["signature"])
        if i % 7 == 3:
            sig = sig[:-1] + bytes([sig[-1] ^ 0x80])
        items.append((pub, msg, sig))
    assert verify_many(items) == [verify_fast(*it) for it in items]
    assert verify_many(items).count(False) == len([i for i in range(len(items)) if i % 7 == 3])
