"""Big folders: how a listing is split into pages and which pages one change rewrites (pure).

docs/specs/folders.md, "Big folders". A folder whose listing is over INLINE_MAX bytes keeps a page
index in its slot; each page is an immutable file holding a sealed leaf listing of at most
about PAGE_TARGET bytes, covering the names from its ``first`` up to the next page's. Adding,
changing or removing one entry rewrites one page (or two, when it splits) and the root index,
never the other pages: the cost does not grow with the folder's entry count, only the root
index does, by one reference (about 200 bytes) per page.

Imports from: veil.format.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from veil.format import cbor
from veil.format.folder import Entry, PageRef

INLINE_MAX = 64 * 1024  # a listing at most this big stays in the slot itself
PAGE_TARGET = 48 * 1024  # bytes of entries a new page is filled to
PAGE_MAX = 2 * PAGE_TARGET  # a page over this splits


def entry_size(e: Entry) -> int:
    return len(cbor.encode(e.to_value()))


def fits_inline(entries: list[Entry] | tuple[Entry, ...]) -> bool:
    return sum(entry_size(e) for e in entries) + 16 <= INLINE_MAX


def paginate(entries: list[Entry] | tuple[Entry, ...], target: int = PAGE_TARGET) -> list[list[Entry]]:
    """Sorted entries cut into consecutive groups of about ``target`` bytes each (never empty)."""
    groups: list[list[Entry]] = []
    cur: list[Entry] = []
    size = 0
    for e in entries:
        n = entry_size(e)
        if cur and size + n > target:
            groups.append(cur)
            cur, size = [], 0
        cur.append(e)
        size += n
    if cur:
        groups.append(cur)
    return groups


def page_for(pages: tuple[PageRef, ...] | list[PageRef], name: str) -> int:
    """The index of the page whose range holds ``name`` (the first page also takes smaller names)."""
    firsts = [p.first for p in pages]
    return max(0, bisect.bisect_right(firsts, name) - 1)


@dataclass(frozen=True)
class PagePlan:
    """Replace ``pages[index]`` by one page per group (none: the page became empty)."""

    index: int
    groups: list[list[Entry]]


def plan_page_update(page_entries: list[Entry], index: int) -> PagePlan:
    """After editing page ``index`` to ``page_entries`` (sorted): keep it as one page, split it
    when it grew past PAGE_MAX, or drop it when empty."""
    if not page_entries:
        return PagePlan(index, [])
    if sum(entry_size(e) for e in page_entries) <= PAGE_MAX:
        return PagePlan(index, [page_entries])
    return PagePlan(index, paginate(page_entries))


def splice(pages: list[PageRef], plan: PagePlan, new_refs: list[PageRef]) -> list[PageRef]:
    """The page index after ``plan``, given the uploaded pages' references (one per group). The
    first page keeps ``first = ""`` so every name has a page."""
    if len(new_refs) != len(plan.groups):
        raise ValueError("one reference per planned page")
    out = pages[: plan.index] + new_refs + pages[plan.index + 1 :]
    if out and out[0].first != "":
        out[0] = PageRef("", out[0].count, out[0].cap)
    return out
