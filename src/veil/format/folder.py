"""A folder's listing: entries (name -> child cap, size, kind, mtime) or an index of pages (pure).

docs/specs/folders.md, "Listing". The listing is canonical CBOR and is only ever stored sealed
(format/folder_seal.py). Entries are sorted by name and unique, and no two names collide once
folded (format/names.py); a big folder's root lists pages instead, each page an immutable file
holding a sealed listing of its own (format/folder_pages.py). Parsing checks every field's type
and bound, each cap's kind, and the order; it does not refuse bad names, which a reader reports
per entry (names.local_names) rather than losing the whole folder to one hostile entry.

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from veil.errors import CapError, IntegrityError
from veil.format import cbor
from veil.format.caps import ReadCap, parse_read_cap
from veil.format.fields import get_int, get_str, require_map
from veil.format.folder_caps import FolderReadCap, parse_folder_cap
from veil.format.names import MAX_NAME_BYTES

FILE = "file"
FOLDER = "folder"
KINDS = (FILE, FOLDER)
MAX_LISTING = 240 * 1024  # bytes of a listing's CBOR (a sealed body must fit a slot record)
MAX_ENTRIES = 8192  # entries (or page references) in one listing
MAX_MIME = 128
WCAP_SIZE = 80  # salt[32] || sealed write seed[32] || tag[16]


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # FILE or FOLDER; nothing else (no symlinks, no devices)
    cap: str  # a file's veil:r1 read cap or a folder's veil:fr1 read cap
    size: int = 0  # a file's size in bytes; 0 for a folder
    mtime: int | None = None  # seconds since the Unix epoch
    mime: str | None = None
    wcap: bytes | None = None  # a child folder's write cap, sealed under this folder's write key

    def to_value(self) -> dict[str, Any]:
        v: dict[str, Any] = {"name": self.name, "kind": self.kind, "cap": self.cap, "size": self.size}
        if self.mtime is not None:
            v["mtime"] = self.mtime
        if self.mime is not None:
            v["mime"] = self.mime
        if self.wcap is not None:
            v["wcap"] = self.wcap
        return v

    def child(self) -> ReadCap | FolderReadCap:
        return child_cap(self.kind, self.cap)


def child_cap(kind: str, cap: str) -> ReadCap | FolderReadCap:
    """The entry's cap, parsed as its kind requires (IntegrityError if it is not)."""
    try:
        if kind == FILE and cap.startswith("veil:r1:"):
            return parse_read_cap(cap)
        if kind == FOLDER and cap.startswith("veil:fr1:"):
            parsed = parse_folder_cap(cap)
            assert isinstance(parsed, FolderReadCap)
            return parsed
    except CapError as e:
        raise IntegrityError(f"folder entry has a garbled cap: {e}") from e
    raise IntegrityError(f"folder entry of kind {kind!r} has a cap of the wrong kind")


@dataclass(frozen=True)
class PageRef:
    """One page of a big folder: its entries' names are >= ``first`` and < the next page's."""

    first: str
    count: int  # entries in the page's subtree
    cap: str  # veil:r1 read cap of the immutable file holding the page

    def to_value(self) -> dict[str, Any]:
        return {"first": self.first, "count": self.count, "cap": self.cap}


@dataclass(frozen=True)
class Listing:
    """A leaf (``entries``) or a page index (``pages``); an empty folder has neither."""

    entries: tuple[Entry, ...] = ()
    pages: tuple[PageRef, ...] = ()

    def __post_init__(self) -> None:
        if self.entries and self.pages:
            raise ValueError("a listing holds entries or pages, not both")

    def to_value(self) -> dict[str, Any]:
        if self.pages:
            return {"pages": [p.to_value() for p in self.pages]}
        return {"entries": [e.to_value() for e in self.entries]}

    def to_bytes(self) -> bytes:
        return cbor.encode(self.to_value())

    @property
    def count(self) -> int:
        return sum(p.count for p in self.pages) if self.pages else len(self.entries)


def sorted_listing(entries: list[Entry] | tuple[Entry, ...]) -> Listing:
    return Listing(entries=tuple(sorted(entries, key=lambda e: e.name)))


def _parse_entry(v: Any) -> Entry:
    w = "folder entry"
    m = require_map(v, w, {"name", "kind", "cap", "size", "mtime", "mime", "wcap"})
    kind = get_str(m, "kind", w, 16)
    if kind not in KINDS:
        raise IntegrityError(f"folder entry of unknown kind {kind[:16]!r} (symlinks and devices are not allowed)")
    name = get_str(m, "name", w, MAX_NAME_BYTES)
    cap = get_str(m, "cap", w, 256)
    child_cap(kind, cap)
    wcap = m.get("wcap")
    if wcap is not None and (kind != FOLDER or not isinstance(wcap, bytes) or len(wcap) != WCAP_SIZE):
        raise IntegrityError(f"{w}: field 'wcap' must be {WCAP_SIZE} bytes, on a folder")
    return Entry(
        name=name, kind=kind, cap=cap, size=get_int(m, "size", w),
        mtime=get_int(m, "mtime", w, -(2**62), 2**62) if "mtime" in m else None,
        mime=get_str(m, "mime", w, MAX_MIME) if "mime" in m else None, wcap=wcap,
    )


def _parse_page(v: Any) -> PageRef:
    w = "folder page reference"
    m = require_map(v, w, {"first", "count", "cap"})
    cap = get_str(m, "cap", w, 256)
    child_cap(FILE, cap)
    return PageRef(first=get_str(m, "first", w, MAX_NAME_BYTES), count=get_int(m, "count", w), cap=cap)


def parse_listing(data: bytes) -> Listing:
    """Canonical CBOR of at most MAX_LISTING bytes, every field checked, names strictly increasing."""
    v = cbor.decode(data, MAX_LISTING)
    if not isinstance(v, dict) or len(v) != 1 or not set(v) <= {"entries", "pages"}:
        raise IntegrityError("folder listing must hold exactly one of 'entries' or 'pages'")
    ((key, items),) = v.items()
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise IntegrityError(f"folder listing: {key!r} must be a list of at most {MAX_ENTRIES}")
    if key == "pages":
        pages = tuple(_parse_page(x) for x in items)
        _increasing([p.first for p in pages], "page")
        if not pages:
            raise IntegrityError("folder page index is empty")
        return Listing(pages=pages)
    entries = tuple(_parse_entry(x) for x in items)
    _increasing([e.name for e in entries], "entry")
    return Listing(entries=entries)


def _increasing(names: list[str], what: str) -> None:
    for a, b in itertools.pairwise(names):
        if not a < b:
            raise IntegrityError(f"folder listing: {what} names are not sorted and unique")
