"""Big folders (format/folder_pages.py): 100,000 entries in pages; one change rewrites one page."""

from __future__ import annotations

from folder_strategies import file_entry

from veil.format.caps import ReadCap
from veil.format.folder import Entry, Listing, PageRef, parse_listing, sorted_listing
from veil.format.folder_caps import FolderWriteCap
from veil.format.folder_pages import (
    INLINE_MAX,
    PAGE_MAX,
    PAGE_TARGET,
    entry_size,
    fits_inline,
    page_for,
    paginate,
    plan_page_update,
    splice,
)
from veil.format.folder_seal import MAX_BODY, PAGE, open_body, seal_body

W = FolderWriteCap(bytes(range(32)))


def ref(i: int, first: str, count: int) -> PageRef:
    return PageRef(first, count, ReadCap(bytes([i % 256]) * 32, bytes([i // 256]) * 32).to_string())


def test_a_hundred_thousand_entries() -> None:
    entries = sorted_listing([file_entry(f"photo-{i:06d}.jpg", i) for i in range(100_000)]).entries
    assert not fits_inline(entries)
    groups = paginate(entries)
    assert sum(len(g) for g in groups) == 100_000
    assert all(sum(entry_size(e) for e in g) <= PAGE_TARGET for g in groups)
    refs = [ref(i, "" if i == 0 else g[0].name, len(g)) for i, g in enumerate(groups)]
    root = Listing(pages=tuple(refs))
    assert root.count == 100_000
    body = seal_body(W, 1, root)
    assert len(body) <= MAX_BODY  # the root index of 100,000 entries fits one slot record
    assert len(body) < 100_000  # ... and is small: about 200 bytes per page
    page = seal_body(W, 0, Listing(entries=tuple(groups[7])), PAGE)
    assert open_body(W.read_cap(), 0, page, PAGE).entries == tuple(groups[7])
    # Adding one entry touches exactly one page, whatever the folder's size.
    name = "photo-050000.jpg-new"
    i = page_for(refs, name)
    assert groups[i][0].name <= name and (i + 1 == len(groups) or name < groups[i + 1][0].name)
    edited = sorted([*groups[i], file_entry(name, 7)], key=lambda e: e.name)
    plan = plan_page_update(edited, i)
    assert plan.groups == [edited]
    new = splice(refs, plan, [ref(9999, refs[i].first, len(edited))])
    assert len(new) == len(refs) and new[:i] == refs[:i] and new[i + 1 :] == refs[i + 1 :]
    assert parse_listing(Listing(pages=tuple(new)).to_bytes()).count == 100_001


def test_pages_split_when_full_and_vanish_when_empty() -> None:
    big: list[Entry] = []
    while sum(entry_size(e) for e in big) <= PAGE_MAX:
        big.append(file_entry(f"n{len(big):05d}", len(big)))
    plan = plan_page_update(big, 3)
    assert len(plan.groups) >= 2 and [e for g in plan.groups for e in g] == big
    refs = [ref(i, "" if i == 0 else f"p{i}", 1) for i in range(5)]
    assert len(splice(refs, plan_page_update([], 2), [])) == 4
    dropped_first = splice(refs, plan_page_update([], 0), [])
    assert dropped_first[0].first == "" and len(dropped_first) == 4  # every name still has a page


def test_page_for_small_names_go_to_the_first_page() -> None:
    refs = [ref(0, "", 1), ref(1, "m", 1), ref(2, "t", 1)]
    assert [page_for(refs, n) for n in ("", "a", "m", "n", "t", "zz")] == [0, 0, 1, 1, 2, 2]


def test_inline_limit() -> None:
    small = [file_entry(f"f{i}", i) for i in range(10)]
    assert fits_inline(small) and INLINE_MAX < MAX_BODY
