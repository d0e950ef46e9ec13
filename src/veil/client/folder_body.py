"""A folder version's content in and out of its slot payload: open the sealed root and, only as
needed, its pages (immutable files); seal a new listing, inline or paged, reusing every page the
change did not touch.

docs/specs/folders.md, "Big folders". ``Content`` opens pages lazily: a lookup fetches the one
page whose range holds the name; ``entries`` (a listing, a download) fetches them all, in
parallel. An edit loads the pages of the names it touches and, for a name it adds, every page
that could hold a name colliding with it once folded (folder_fold.collision_pages), so adding
one entry to a big folder reads and writes one page, not the folder. Pages are immutable, so
they are cached by cap for the life of the process.

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from veil.errors import IntegrityError
from veil.format import folder_pages
from veil.format.caps import parse_read_cap
from veil.format.folder import Entry, Listing, PageRef, sorted_listing
from veil.format.folder_caps import FolderReadCap, FolderWriteCap
from veil.format.folder_pages import fits_inline, page_for, paginate, plan_page_update
from veil.format.folder_seal import PAGE, open_body, seal_body
from veil.format.mutable import SlotRecord

from .download import download
from .folder_fold import collision_pages
from .network import Network
from .upload import upload

_pages: dict[str, tuple[Entry, ...]] = {}
_lock = threading.Lock()
MAX_CACHED_PAGES = 4096


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


class Content:
    """One version's entries: inline, or a page index whose pages are fetched as needed."""

    def __init__(self, entries: dict[str, Entry] | None = None, pages: tuple[PageRef, ...] = (),
                 net: Network | None = None, rcap: FolderReadCap | None = None) -> None:  # fmt: skip
        self.pages = pages
        self._inline = dict(entries or {})
        self._net, self._rcap = net, rcap
        self._loaded: dict[int, tuple[Entry, ...]] = {}
        self._lock = threading.Lock()

    def _bound(self, i: int) -> str | None:
        return self.pages[i + 1].first if i + 1 < len(self.pages) else None

    def load(self, i: int) -> tuple[Entry, ...]:
        with self._lock:
            got = self._loaded.get(i)
        if got is None:
            assert self._net is not None and self._rcap is not None
            got = _page(self._net, self._rcap, self.pages[i], self._bound(i))
            with self._lock:
                self._loaded[i] = got
        return got

    def load_all(self) -> None:
        todo = [i for i in range(len(self.pages)) if i not in self._loaded]
        if todo:
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="page") as ex:
                list(ex.map(self.load, todo))

    def get(self, name: str) -> Entry | None:
        if not self.pages:
            return self._inline.get(name)
        return next((e for e in self.load(page_for(self.pages, name)) if e.name == name), None)

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry (a paged folder's pages all fetched)."""
        if not self.pages:
            return dict(self._inline)
        self.load_all()
        return {e.name: e for i in range(len(self.pages)) for e in self._loaded[i]}

    def ensure(self, names: Iterable[str], added: Iterable[str]) -> None:
        """Load the pages holding ``names``, and those that could hold a name colliding with one
        of ``added`` once normalised and case-folded."""
        if not self.pages:
            return
        want = {page_for(self.pages, n) for n in names}
        for n in added:
            extra = collision_pages([p.first for p in self.pages], n)
            if extra is None:
                self.load_all()
                return
            want |= extra
        for i in sorted(want - set(self._loaded)):
            self.load(i)

    def known(self) -> dict[str, Entry]:
        """The entries loaded so far (all of them for an inline folder)."""
        if not self.pages:
            return dict(self._inline)
        return {e.name: e for i in sorted(self._loaded) for e in self._loaded[i]}

    def loaded_pages(self) -> set[int]:
        return set(self._loaded)


def open_content(net: Network, rcap: FolderReadCap, rec: SlotRecord | None) -> Content:
    """The content of version ``rec`` (None: the empty folder); pages are fetched as needed."""
    if rec is None:
        return Content()
    listing = open_body(rcap, rec.seq, rec.payload)
    if not listing.pages:
        return Content({e.name: e for e in listing.entries})
    return Content(pages=listing.pages, net=net, rcap=rcap)


def _upload_page(net: Network, wcap: FolderWriteCap, group: list[Entry]) -> PageRef:
    body = seal_body(wcap, 0, Listing(entries=tuple(group)), PAGE)
    res = upload(net, io.BytesIO(body), len(body), "folder-page", mime="application/octet-stream")
    cap = res.cap.to_string()
    with _lock:
        _pages[cap] = tuple(group)
    return PageRef(group[0].name, len(group), cap)


def seal_content(net: Network, wcap: FolderWriteCap, seq: int, entries: dict[str, Entry],
                 old: Content | None = None) -> bytes:  # fmt: skip
    """The slot payload for version ``seq``. ``old`` paged: ``entries`` are the entries of the
    pages ``old`` loaded, after the change; those pages are re-sealed where they changed and
    every other page is kept by reference. Otherwise ``entries`` is the whole folder: inline
    when small, else cut into new pages."""
    ordered = sorted(entries.values(), key=lambda e: e.name)
    if old is None or not old.pages:
        if fits_inline(ordered):
            return seal_body(wcap, seq, sorted_listing(ordered))
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="page-up") as ex:
            refs = list(ex.map(lambda g: _upload_page(net, wcap, g), paginate(ordered, folder_pages.PAGE_TARGET)))
        return seal_body(wcap, seq, Listing(pages=tuple(refs)))
    loaded = old.loaded_pages()
    groups: dict[int, list[Entry]] = {i: [] for i in loaded}
    for e in ordered:
        i = page_for(old.pages, e.name)
        if i not in groups:
            raise RuntimeError(f"entry {e.name!r} falls in a page the edit did not load")
        groups[i].append(e)
    out: list[PageRef] = []
    for i, ref in enumerate(old.pages):
        if i not in groups or list(old.load(i)) == groups[i]:
            out.append(ref)
            continue
        out += [_upload_page(net, wcap, g) for g in plan_page_update(groups[i], i).groups]
    if not out:
        return seal_body(wcap, seq, sorted_listing([]))
    if out[0].first != "":
        out[0] = PageRef("", out[0].count, out[0].cap)
    return seal_body(wcap, seq, Listing(pages=tuple(out)))
