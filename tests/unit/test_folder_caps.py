"""Folder caps and links (format/folder_caps.py): round trips, one-way derivation, garbling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey
from veil.errors import CapError
from veil.format.caps import ReadCap
from veil.format.folder_caps import (
    FolderReadCap,
    FolderVerifyCap,
    FolderWriteCap,
    parse_folder_cap,
    read_cap_of,
    read_key_of,
    verify_cap_of,
    verify_key_of,
)
from veil.format.mutable import slot_id

keys = st.binary(min_size=32, max_size=32)


@given(keys)
def test_roundtrip_and_derivation(seed: bytes) -> None:
    w = FolderWriteCap(seed)
    r, v = w.read_cap(), w.verify_cap()
    assert parse_folder_cap(w.to_string()) == w
    assert parse_folder_cap(r.to_string()) == r
    assert parse_folder_cap(v.to_string()) == v
    assert parse_folder_cap(r.link("https://gw.example/")) == r
    assert r.slot_id == slot_id(SigningKey(seed).public_key) == v.slot_id
    assert r.read_key == read_key_of(seed) and v.verify_key == verify_key_of(r.read_key)
    assert read_cap_of(w) == r and verify_cap_of(r) == v and verify_cap_of(w) == v
    # Each cap holds nothing of the one above it: the read key is not the seed, the verify key not the read key.
    assert r.read_key != seed and v.verify_key != r.read_key
    assert r.read_key not in v.to_string().encode() and seed.hex() not in r.to_string()


@given(keys, st.sampled_from(["w", "r", "v", "link"]), st.data())
def test_any_changed_character_is_garbled(seed: bytes, kind: str, data: st.DataObject) -> None:
    w = FolderWriteCap(seed)
    text = {"w": w.to_string(), "r": w.read_cap().to_string(), "v": w.verify_cap().to_string(),
            "link": w.read_cap().link("https://gw")}[kind]
    start = len("https://gw/d/") if kind == "link" else len("veil:fw1:")
    i = data.draw(st.integers(start, len(text) - 1))
    if text[i] == "#":
        return
    c = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567").filter(lambda c: c != text[i]))
    with pytest.raises(CapError):
        parse_folder_cap(text[:i] + c + text[i + 1 :])


def test_foreign_and_truncated() -> None:
    w = FolderWriteCap(bytes(32))
    file_cap = ReadCap(bytes(32), bytes(32)).to_string()
    for bad in (w.to_string()[:-1], w.to_string() + "a", "veil:fx1:abc", file_cap, "", "x" * 600,
                w.read_cap().link("https://gw").split("#")[0], "https://gw/f/abc#def"):
        with pytest.raises(CapError):
            parse_folder_cap(bad)
    with pytest.raises(CapError, match="verify cap"):
        read_cap_of(w.verify_cap())


def test_a_read_cap_cannot_pass_as_a_verify_cap_or_back() -> None:
    r = FolderWriteCap(bytes(32)).read_cap()
    swapped = "veil:fv1:" + r.to_string()[9:]
    with pytest.raises(CapError, match="checksum"):
        parse_folder_cap(swapped)
    assert isinstance(parse_folder_cap(r.to_string()), FolderReadCap)
    assert isinstance(parse_folder_cap(r.verify_cap().to_string()), FolderVerifyCap)


@given(keys)
def test_write_link_round_trip(seed: bytes) -> None:
    w = FolderWriteCap(seed)
    link = w.write_link("https://gw.example/")
    path, frag = link.split("#")
    assert path == w.read_cap().link("https://gw.example").split("#")[0] and frag.startswith("w-")
    assert parse_folder_cap(link) == w


def test_write_link_with_another_folders_key_or_a_garbled_one_is_refused() -> None:
    a, b = FolderWriteCap(bytes(32)), FolderWriteCap(bytes([1]) * 32)
    path = a.write_link("https://gw").split("#")[0]
    with pytest.raises(CapError, match="does not belong"):
        parse_folder_cap(path + "#" + b.write_link("https://gw").split("#")[1])
    frag = a.write_link("https://gw").split("#")[1]
    with pytest.raises(CapError, match="garbled"):
        parse_folder_cap(path + "#" + frag[:-1] + ("a" if frag[-1] != "a" else "b"))
    # a read link's key part behind "w-" is not a write key (other checksum kind)
    with pytest.raises(CapError):
        parse_folder_cap(path + "#w-" + a.read_cap().link("https://gw").split("#")[1])
