"""Folder vectors (tests/vectors/folders_v1.json, made by tests/vectors/make_folder_vectors.py):
every derivation, seal and signature recomputed byte for byte, and every stored object opened."""

from __future__ import annotations

import json
from pathlib import Path

from veil.crypto import labels
from veil.crypto.kdf import hkdf_sha256
from veil.format.folder_caps import FolderReadCap, FolderVerifyCap, FolderWriteCap, parse_folder_cap
from veil.format.folder_seal import open_body, open_child_write_cap, open_index, seal_body
from veil.format.mutable import parse_record, sign_record

V = json.loads((Path(__file__).parent.parent / "vectors" / "folders_v1.json").read_text())


def test_caps_and_keys() -> None:
    w = parse_folder_cap(V["write_cap"])
    assert isinstance(w, FolderWriteCap) and w.seed.hex() == V["write_seed"]
    assert w.signing_key.public_key.hex() == V["public_key"]
    r, v = w.read_cap(), w.verify_cap()
    assert (r.slot_id.hex(), r.read_key.hex(), v.verify_key.hex()) == (V["slot_id"], V["read_key"], V["verify_key"])
    assert (r.to_string(), v.to_string(), r.link("https://gw.example")) == (V["read_cap"], V["verify_cap"], V["link"])
    assert parse_folder_cap(V["link"]) == r
    assert w.write_link("https://gw.example") == V["write_link"] and parse_folder_cap(V["write_link"]) == w
    salt = bytes.fromhex(V["salt"])
    assert hkdf_sha256(r.read_key, labels.FOLDER_LISTING_KEY, salt=salt).hex() == V["listing_key_for_salt"]
    assert hkdf_sha256(v.verify_key, labels.FOLDER_INDEX_KEY, salt=salt).hex() == V["index_key_for_salt"]


def test_bodies_and_records_byte_for_byte() -> None:
    w = parse_folder_cap(V["write_cap"])
    assert isinstance(w, FolderWriteCap)
    salt = bytes.fromhex(V["salt"])
    r = parse_folder_cap(V["read_cap"])
    v = parse_folder_cap(V["verify_cap"])
    assert isinstance(r, FolderReadCap) and isinstance(v, FolderVerifyCap)
    rec2 = parse_record(bytes.fromhex(V["record_v2"]), r.slot_id)
    rec1 = parse_record(bytes.fromhex(V["record_v1"]), r.slot_id)
    assert rec2.checkstring.to_text() == V["checkstring_v2"] and rec2.chain == (rec1.checkstring,)
    listing = open_body(r, 2, rec2.payload)
    assert listing.to_bytes().hex() == V["listing_cbor"]
    assert [e.name for e in listing.entries] == [e["name"] for e in V["entries"]]
    assert open_index(v, 2, rec2.payload) == [e.child().verify_cap().to_string() for e in listing.entries]
    assert seal_body(w, 2, listing, rand=lambda n: salt[:n]).hex() == V["body_v2"]
    assert sign_record(w.signing_key, 2, rec2.payload, (rec1.checkstring,)).raw == rec2.raw
    photos = next(e for e in listing.entries if e.name == "Photos")
    child = open_child_write_cap(w, photos.child().slot_id, photos.wcap or b"")  # type: ignore[union-attr]
    assert child.to_string() == V["child_write_cap"]
