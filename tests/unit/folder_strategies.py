"""Hypothesis strategies and small builders for folder tests (tahoe-lafs test/strategies.py)."""

from __future__ import annotations

import functools
import unicodedata

from hypothesis import strategies as st

from veil.format.caps import ReadCap
from veil.format.folder import FILE, FOLDER, Entry, Listing, sorted_listing
from veil.format.folder_caps import FolderWriteCap
from veil.format.names import fold, name_problem


@functools.cache
def _file_cap(n: int) -> str:
    return ReadCap(bytes([n]) * 32, bytes(32)).to_string()


def file_entry(name: str, n: int = 0, size: int = 1) -> Entry:
    return Entry(name, FILE, _file_cap(n % 256), size=size, mtime=1_700_000_000)


def folder_entry(name: str, n: int = 0) -> Entry:
    return Entry(name, FOLDER, FolderWriteCap(bytes([n % 256]) * 32).read_cap().to_string())


names = st.text(min_size=1, max_size=40).map(lambda s: unicodedata.normalize("NFC", s)).filter(lambda s: name_problem(s) is None)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    name = draw(names)
    kind = draw(st.sampled_from([FILE, FOLDER]))
    if kind == FOLDER:
        cap = FolderWriteCap(draw(st.binary(min_size=32, max_size=32))).read_cap().to_string()
        return Entry(name, FOLDER, cap)
    cap = ReadCap(draw(st.binary(min_size=32, max_size=32)), draw(st.binary(min_size=32, max_size=32))).to_string()
    return Entry(name, FILE, cap, size=draw(st.integers(0, 2**50)), mtime=draw(st.none() | st.integers(-(2**40), 2**40)),
                 mime=draw(st.none() | st.sampled_from(["text/plain", "image/png"])))


@st.composite
def listings(draw: st.DrawFn) -> Listing:
    got: dict[str, Entry] = {}
    for e in draw(st.lists(entries(), max_size=12)):
        if fold(e.name) not in {fold(n) for n in got}:
            got[e.name] = e
    return sorted_listing(list(got.values()))
