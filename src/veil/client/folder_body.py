"""A folder version's content in and out of its slot payload: open the sealed root and its pages
(immutable files), and seal a new listing, inline or paged, reusing every unchanged page.

docs/specs/folders.md, "Big folders". Pages are immutable, so they are cached by cap for the
life of the process: a writer retrying a lost race, or walking the same folder twice, fetches a
page once. Writing re-uploads only the pages whose entries changed (and splits a page grown
past PAGE_MAX); the others are kept by reference.

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from veil.errors import IntegrityError
from veil.format import folder_pages
from veil.format.caps import parse_read_cap
from veil.format.folder import Entry, Listing, PageRef, sorted_listing
from veil.format.folder_caps import FolderReadCap, FolderWriteCap
from veil.format.folder_pages import fits_inline, page_for, paginate, plan_page_update
from veil.format.folder_seal import PAGE, open_body, seal_body
from veil.format.mutable import SlotRecord

from .download import download
from .network import Network
from .upload import upload

_pages: dict[str, tuple[Entry, ...]] = {}
_lock = threading.Lock()
MAX_CACHED_PAGES = 4096


@dataclass(frozen=True)
class Content:
    """One version's entries, and the page index they came from (empty: inline)."""

    entries: dict[str, Entry]
    pages: tuple[PageRef, ...] = ()


def fetch_file_bytes(net: Network, cap: str) -> bytes:
    buf = io.BytesIO()
    download(net, parse_read_cap(cap), buf)
    return buf.getvalue()


def _page(net: Network, rcap: FolderReadCap, ref: PageRef, upto: str | None) -> tuple[Entry, ...]:
    with _lock:
        got = _pages.get(ref.cap)
    if got is None:
        listing = open_body(rcap, 0, fetch_file_bytes(net, ref.cap), PAGE)
        if listing.pages:
            raise IntegrityError("folder page holds another page index (deeper page trees are not supported yet)")
        got = listing.entries
        with _lock:
            if len(_pages) >= MAX_CACHED_PAGES:
                _pages.clear()
            _pages[ref.cap] = got
    if any(e.name < ref.first or (upto is not None and e.name >= upto) for e in got):
        raise IntegrityError("folder page holds names outside its range")
    return got


def open_content(net: Network, rcap: FolderReadCap, rec: SlotRecord | None) -> Content:
    """The entries of version ``rec`` (None: the empty folder), its pages fetched in parallel."""
    if rec is None:
        return Content({})
    listing = open_body(rcap, rec.seq, rec.payload)
    if not listing.pages:
        return Content({e.name: e for e in listing.entries})
    refs = listing.pages
    bounds = [p.first for p in refs[1:]] + [None]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="page") as ex:
        groups = list(ex.map(lambda j: _page(net, rcap, refs[j], bounds[j]), range(len(refs))))
    return Content({e.name: e for g in groups for e in g}, refs)


def _upload_page(net: Network, wcap: FolderWriteCap, group: list[Entry]) -> PageRef:
    body = seal_body(wcap, 0, Listing(entries=tuple(group)), PAGE)
    res = upload(net, io.BytesIO(body), len(body), "folder-page", mime="application/octet-stream")
    cap = res.cap.to_string()
    with _lock:
        _pages[cap] = tuple(group)
    return PageRef(group[0].name, len(group), cap)


def seal_content(net: Network, wcap: FolderWriteCap, seq: int, entries: dict[str, Entry],
                 old: Content | None = None) -> bytes:  # fmt: skip
    """The slot payload for version ``seq`` holding ``entries``: inline when small, else a page
    index whose unchanged pages (those of ``old``) are reused and changed ones uploaded."""
    ordered = sorted(entries.values(), key=lambda e: e.name)
    if fits_inline(ordered):
        return seal_body(wcap, seq, sorted_listing(ordered))
    refs: list[PageRef] = []
    if old is not None and old.pages:
        groups: list[list[Entry]] = [[] for _ in old.pages]
        for e in ordered:
            groups[page_for(old.pages, e.name)].append(e)
        bounds = [p.first for p in old.pages[1:]] + [None]
        for i, ref in enumerate(old.pages):
            hi = bounds[i]
            before = [e for e in old.entries.values() if e.name >= ref.first and (hi is None or e.name < hi)]
            if sorted(before, key=lambda e: e.name) == groups[i]:
                refs.append(ref)
                continue
            refs += [_upload_page(net, wcap, g) for g in plan_page_update(groups[i], i).groups]
    else:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="page-up") as ex:
            refs = list(ex.map(lambda g: _upload_page(net, wcap, g), paginate(ordered, folder_pages.PAGE_TARGET)))
    if refs and refs[0].first != "":
        refs[0] = PageRef("", refs[0].count, refs[0].cap)
    return seal_body(wcap, seq, Listing(pages=tuple(refs)))
