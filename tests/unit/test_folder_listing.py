"""Folder listings and their sealed bodies (format/folder.py, format/folder_seal.py)."""

from __future__ import annotations

import itertools

import pytest
from folder_strategies import file_entry, folder_entry, listings
from hypothesis import given, settings

from veil.errors import IntegrityError, WrongKeyError
from veil.format import cbor
from veil.format.folder import FILE, Entry, Listing, PageRef, parse_listing, sorted_listing
from veil.format.folder_caps import FolderWriteCap
from veil.format.folder_seal import (
    PAGE,
    ROOT,
    derive_index,
    open_body,
    open_child_write_cap,
    open_index,
    seal_body,
    seal_child_write_cap,
)

W = FolderWriteCap(bytes(range(32)))
R = W.read_cap()
V = W.verify_cap()
SMALL = sorted_listing([file_entry("a.txt", 1), folder_entry("photos", 2), file_entry("Zed", 3)])


@settings(max_examples=40, deadline=None)
@given(listings())
def test_listing_and_body_roundtrip(listing: Listing) -> None:
    assert parse_listing(listing.to_bytes()) == listing
    body = seal_body(W, 3, listing)
    assert open_body(R, 3, body) == listing
    assert open_index(V, 3, body) == derive_index(listing)


def test_nodes_see_no_name_and_sizes_are_padded() -> None:
    body = seal_body(W, 1, SMALL)
    assert b"a.txt" not in body and b"photos" not in body and b"veil:" not in body
    one = seal_body(W, 1, sorted_listing([file_entry("a", 1)]))
    longer = seal_body(W, 1, sorted_listing([file_entry("a" * 40, 1)]))
    assert len(one) == len(longer)


def test_every_byte_of_a_body_is_authenticated() -> None:
    body = seal_body(W, 4, SMALL)
    for i in range(len(body)):
        bad = bytearray(body)
        bad[i] ^= 0x80
        with pytest.raises(IntegrityError):
            open_body(R, 4, bytes(bad))


def test_body_is_bound_to_slot_version_and_role() -> None:
    body = seal_body(W, 4, SMALL)
    with pytest.raises(WrongKeyError):
        open_body(R, 5, body)  # replayed as another version
    other = FolderWriteCap(bytes(32)).read_cap()
    with pytest.raises(WrongKeyError):
        open_body(other, 4, body)
    with pytest.raises(IntegrityError, match="role"):
        open_body(R, 4, body, PAGE)
    page = seal_body(W, 0, SMALL, PAGE)
    assert open_body(R, 0, page, PAGE) == SMALL
    with pytest.raises(ValueError):
        seal_body(W, 0, SMALL, ROOT)


def test_a_verify_cap_opens_the_index_but_not_the_listing() -> None:
    body = seal_body(W, 2, SMALL)
    idx = open_index(V, 2, body)
    assert idx == [e.child().verify_cap().to_string() for e in SMALL.entries]
    assert not any("a.txt" in c or c.startswith(("veil:r1:", "veil:fr1:")) for c in idx)


def test_an_index_that_does_not_match_the_listing_is_refused() -> None:
    # Two bodies sealed with the same salt: swapping the index halves keeps both AEADs valid,
    # so only the cross-check can catch a writer that shows verifiers other children.
    fixed = itertools.repeat(bytes(32))
    a = seal_body(W, 1, SMALL, rand=lambda n: next(fixed)[:n])
    b = seal_body(W, 1, sorted_listing([file_entry("other", 9)]), rand=lambda n: next(fixed)[:n])
    ilen_a = int.from_bytes(a[38:42], "big")
    ilen_b = int.from_bytes(b[38:42], "big")
    mixed = b[:42 + ilen_b] + a[42 + ilen_a:]
    with pytest.raises(IntegrityError, match="index does not match"):
        open_body(R, 1, mixed)


def _raw(value: object) -> bytes:
    return cbor.encode(value)


def test_parse_listing_is_strict() -> None:
    e = file_entry("b", 1).to_value()
    bad = [
        {"entries": [e, e]},  # duplicate
        {"entries": [file_entry("b").to_value(), file_entry("a").to_value()]},  # unsorted
        {"entries": [{**e, "kind": "symlink"}]},
        {"entries": [{**e, "kind": "folder"}]},  # a file cap on a folder entry
        {"entries": [{**e, "cap": "veil:r1:garbage"}]},
        {"entries": [{**e, "extra": 1}]},
        {"entries": [{**e, "size": -1}]},
        {"entries": [{**e, "wcap": bytes(80)}]},  # a write cap on a file
        {"entries": [], "pages": []},
        {"pages": []},
        {"pages": [{"first": "", "count": 1, "cap": W.read_cap().to_string()}]},  # page caps are r1
        {},
        [],
    ]
    for v in bad:
        with pytest.raises(IntegrityError):
            parse_listing(_raw(v))
    with pytest.raises(IntegrityError):
        parse_listing(b"\xa1\x67entries\x80\x00")  # trailing garbage
    pages = Listing(pages=(PageRef("", 3, file_entry("x", 1).cap), PageRef("m", 2, file_entry("y", 2).cap)))
    assert parse_listing(pages.to_bytes()) == pages and pages.count == 5


def test_parse_keeps_bad_names_for_the_reader_to_refuse() -> None:
    # A hostile writer's names are data to report, not a reason to lose the whole folder.
    hostile = Listing(entries=tuple(sorted(
        (Entry(n, FILE, file_entry("x", i).cap) for i, n in enumerate(["../x", "/etc/x", "a/../../x"])),
        key=lambda e: e.name)))
    assert [e.name for e in parse_listing(hostile.to_bytes()).entries] == sorted(["../x", "/etc/x", "a/../../x"])


def test_child_write_caps_open_only_with_the_parent_write_cap() -> None:
    child = FolderWriteCap(bytes([7]) * 32)
    wcap = seal_child_write_cap(W, child)
    assert open_child_write_cap(W, child.slot_id, wcap) == child
    with pytest.raises(IntegrityError):
        open_child_write_cap(FolderWriteCap(bytes(32)), child.slot_id, wcap)
    with pytest.raises(IntegrityError):
        open_child_write_cap(W, FolderWriteCap(bytes([8]) * 32).slot_id, wcap)
    for i in range(len(wcap)):
        bad = bytearray(wcap)
        bad[i] ^= 1
        with pytest.raises(IntegrityError):
            open_child_write_cap(W, child.slot_id, bytes(bad))
