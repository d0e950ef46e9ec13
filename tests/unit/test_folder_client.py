"""Folders from the client over the in-memory grid (veil.testing.grid): create, read, edit by
compare-and-swap; a stale node, a forged answer, racing writers, big paged folders."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from folder_strategies import file_entry
from hypothesis import given
from hypothesis import strategies as st

from veil.client.folders import (
    add_entry,
    create_folder,
    edit_folder,
    folder_at,
    make_folder,
    read_folder,
    walk,
)
from veil.client.mutable_io import slot_nodes
from veil.errors import NotFoundError, UsageError, WriteConflictError
from veil.format.folder_ops import Put, Remove
from veil.format.mutable import sign_record
from veil.testing.grid import Grid


@pytest.fixture
def grid(tmp_path: Path) -> Iterator[Grid]:
    g = Grid(tmp_path, 10)
    yield g
    g.close()


def test_create_add_read_and_walk(grid: Grid) -> None:
    net = grid.network()
    w = create_folder(net, {"a": file_entry("a", 1)})
    snap = read_folder(net, w)
    assert set(snap.entries) == {"a"} and snap.seq == 1
    sub = make_folder(net, read_folder(net, w), "sub")
    add_entry(net, folder_at(net, w, ["sub"]), file_entry("deep", 2))
    _, e = walk(net, w.read_cap(), ["sub", "deep"])
    assert e is not None and e.cap == file_entry("deep", 2).cap
    # a read cap walks but cannot write; the child's write cap came sealed in the parent's entry
    ro = folder_at(net, w.read_cap(), ["sub"])
    assert ro.wcap is None and folder_at(net, w, ["sub"]).wcap == sub
    with pytest.raises(UsageError, match="read-only"):
        add_entry(net, ro, file_entry("x"))
    with pytest.raises(UsageError, match="already exists"):
        add_entry(net, read_folder(net, w), file_entry("a", 9))
    with pytest.raises(NotFoundError):
        walk(net, w, ["nope"])


def test_a_stale_node_and_a_forging_node_do_not_roll_the_folder_back(grid: Grid) -> None:
    net = grid.network()
    w = create_folder(net, {"v1": file_entry("v1")})
    sn = slot_nodes(net, w.slot_id)
    first = [grid.node(sn.nodes[i]) for i in range(2)]
    for g in first:  # the first nodes a reader asks miss the next write: they stay at version 1
        g.dead = True
    add_entry(net, read_folder(net, w), file_entry("v2"))
    for g in first:
        g.dead = False
    assert first[0].mutable.get(w.slot_id) is not None
    snap = read_folder(net, w)
    assert set(snap.entries) == {"v1", "v2"}
    # A node that answers with a forged record (bit flipped) or another slot's is ignored.
    forged_by = grid.node(sn.nodes[2])
    forged_by.slot_reply = lambda raw: (raw[:-1] + bytes([raw[-1] ^ 1])) if raw else raw
    other = sign_record(w.signing_key.__class__(bytes(32)), 99, b"").raw
    grid.node(sn.nodes[3]).slot_reply = lambda raw: other
    assert set(read_folder(net, w).entries) == {"v1", "v2"}
    # Writes still go through: the forged 409 of a lying node counts as silence.
    add_entry(net, read_folder(net, w), file_entry("v3"))
    forged_by.slot_reply = None
    grid.node(sn.nodes[3]).slot_reply = None
    assert set(read_folder(net, w).entries) == {"v1", "v2", "v3"}


def test_two_writers_racing_lose_nothing(grid: Grid) -> None:
    net = grid.network()
    w = create_folder(net)
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        for i in range(8):
            try:
                add_entry(net, read_folder(net, w), file_entry(f"{tag}{i}", i))
            except BaseException as e:
                errors.append(e)

    ts = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b", "c")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert set(read_folder(net, w).entries) == {f"{t}{i}" for t in "abc" for i in range(8)}


def test_overlapping_changes_conflict_never_overwrite(grid: Grid) -> None:
    net = grid.network()
    w = create_folder(net, {"x": file_entry("x", 1)})
    seen_by_a = read_folder(net, w)
    seen_by_b = read_folder(net, w)
    edit_folder(net, seen_by_b, [Put(file_entry("x", 2), seen_by_b.entries["x"])])
    with pytest.raises(WriteConflictError, match="another writer"):
        edit_folder(net, seen_by_a, [Put(file_entry("x", 3), seen_by_a.entries["x"])])
    with pytest.raises(WriteConflictError):
        edit_folder(net, seen_by_a, [Remove(seen_by_a.entries["x"])])
    # A disjoint change made against the same stale view merges.
    edit_folder(net, seen_by_a, [Put(file_entry("y", 4))])
    got = read_folder(net, w).entries
    assert got["x"].cap == file_entry("x", 2).cap and "y" in got


def test_big_folder_pages_and_one_change_reads_and_rewrites_one_page(grid: Grid,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.client import folder_body

    net = grid.network()
    entries = {f"file-{i:05d}.jpg": file_entry(f"file-{i:05d}.jpg", i) for i in range(1500)}
    w = create_folder(net, entries)
    snap = read_folder(net, w)
    assert len(snap.content.pages) >= 3 and snap.entries == entries
    folder_body._pages.clear()  # a fresh process: no page cached
    fetched: list[str] = []
    real = folder_body.fetch_file_bytes
    monkeypatch.setattr(folder_body, "fetch_file_bytes", lambda n, cap: fetched.append(cap) or real(n, cap))
    grid.reset_counts()
    snap = read_folder(net, w)
    add_entry(net, snap, file_entry("file-00700.jpg-new", 7))
    # The page the name falls in, and the two where a colliding spelling would sort (F…, ﬁ…):
    # not the folder's other pages.
    assert len(set(fetched)) <= 3 < len(snap.content.pages)
    uploads = grid.requests("oneshot") + grid.requests("begin")
    assert uploads == 10  # one page of 10 shares; the other pages are reused
    # A name that could collide with names on other pages reads those pages, and is refused.
    fetched.clear()
    folder_body._pages.clear()
    with pytest.raises(UsageError, match="collides"):
        add_entry(net, read_folder(net, w), file_entry("FILE-01400.JPG", 1))
    assert len(set(fetched)) >= 2
    got = read_folder(net, w).entries
    assert len(got) == 1501 and "file-00700.jpg-new" in got


def test_collision_pages_cover_every_case_variant() -> None:
    from veil.client.folder_fold import collision_pages

    firsts = ["", "M", "S", "a", "m", "s", "ß"]
    assert collision_pages(firsts, "readme") == {1, 4}  # the pages of R… (M..S) and r… (m..s)
    got = collision_pages(firsts, "ss")
    assert got is not None and {2, 5, 6} <= got  # SS, ss, ß (and ſ: past the last first, page 6)
    assert collision_pages(firsts, "café") is None  # not ASCII once folded: read every page


_letters = st.text(alphabet="aAbBsSfFiIkK\u017f\u00df\u1e9e\ufb01\ufb00_-.0", min_size=1, max_size=6)


@given(st.lists(_letters, min_size=1, max_size=40), st.lists(_letters, max_size=8), _letters)
def test_collision_pages_hold_every_colliding_name(names: list[str], cuts: list[str], new: str) -> None:
    from veil.client.folder_fold import collision_pages
    from veil.format.folder import PageRef
    from veil.format.folder_pages import page_for
    from veil.format.names import fold

    firsts = ["", *sorted(set(cuts) - {""})]
    refs = [PageRef(f, 0, "") for f in firsts]
    got = collision_pages(firsts, new)
    want = {page_for(refs, x) for x in names if fold(x) == fold(new)}
    assert got is None or want <= got


def test_nodes_without_the_mutable_role_get_a_clear_error(grid: Grid, monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.errors import UnavailableError
    from veil.testing.grid import GridTransport

    def no_role(*_: object, **__: object) -> None:
        raise NotFoundError("node gridX: not found")

    monkeypatch.setattr(GridTransport, "put_slot", no_role)
    with pytest.raises(UnavailableError, match="mutable"):
        create_folder(grid.network())


def test_old_versions_are_kept_and_readable(grid: Grid) -> None:
    net = grid.network()
    w = create_folder(net)
    for name in ("a", "b", "c"):
        add_entry(net, read_folder(net, w), file_entry(name))
    assert set(read_folder(net, w, seq=2).entries) == {"a"}
    assert set(read_folder(net, w, seq=4).entries) == {"a", "b", "c"}
    with pytest.raises(NotFoundError, match="version 99"):
        read_folder(net, w, seq=99)
