"""Published vectors (RFC 5869 HKDF, NIST AES-256-GCM) and Veil's own format vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veil.crypto import labels
from veil.crypto.aead import Aead
from veil.crypto.kdf import hkdf_sha256
from veil.erasure import Codec
from veil.format.caps import parse_read_cap, storage_index
from veil.format.manifest import parse_manifest
from veil.format.segments import SegmentCipher, open_metadata, segment_nonce

VECTORS = Path(__file__).parent.parent / "vectors"


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((VECTORS / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", load("hkdf_rfc5869.json")["cases"])
def test_hkdf_rfc5869(case: dict) -> None:  # type: ignore[type-arg]
    salt = bytes.fromhex(case["salt"]) or None
    out = hkdf_sha256(bytes.fromhex(case["ikm"]), bytes.fromhex(case["info"]), case["length"], salt)
    assert out.hex() == case["okm"]


@pytest.mark.parametrize("case", load("aes_gcm_nist.json")["cases"])
def test_aes_gcm_nist(case: dict) -> None:  # type: ignore[type-arg]
    aead = Aead(bytes.fromhex(case["key"]))
    iv, aad = bytes.fromhex(case["iv"]), bytes.fromhex(case["aad"])
    sealed = aead.seal(iv, bytes.fromhex(case["pt"]), aad)
    assert sealed.hex() == case["ct"] + case["tag"]
    assert aead.open(iv, sealed, aad).hex() == case["pt"]


def test_veil_format_vectors() -> None:
    v = load("veil_format_v1.json")
    key = bytes.fromhex(v["file_key"])
    assert hkdf_sha256(key, labels.SEGMENT_KEY).hex() == v["segment_key"]
    assert hkdf_sha256(key, labels.META_KEY).hex() == v["meta_key"]
    assert storage_index(key).hex() == v["storage_index"]
    plaintext = bytes.fromhex(v["plaintext"])
    segs = [bytes.fromhex(s) for s in v["sealed_segments"]]
    assert [segment_nonce(i, i == len(segs) - 1).hex() for i in range(len(segs))] == v["nonces"]
    cipher = SegmentCipher(key, len(segs))
    out = b""
    for i, s in enumerate(segs):
        buf = bytearray(len(s) - 16)
        cipher.open_into(i, s, buf)
        out += buf
    assert out == plaintext
    assert open_metadata(key, bytes.fromhex(v["sealed_metadata"])) == v["metadata"]
    cap = parse_read_cap(v["read_cap"])
    assert cap.file_key == key
    assert cap.manifest_hash.hex() == v["manifest_hash"]
    assert parse_read_cap(v["link"]) == cap
    man = parse_manifest(bytes.fromhex(v["manifest"]), cap.manifest_hash)
    assert [r.hex() for r in man.roots] == v["share_roots"]
    codec = Codec(v["k"], v["n"])
    for s in segs:
        assert codec.decode(dict(enumerate(codec.encode(s)))) == s
