"""put -r / get -r over the in-memory grid: a tree round-trips; a hostile listing never makes a
download write outside its target; local names a folder may not hold are refused up front."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.client.aliases import add_alias, load_aliases, parse_folder_path
from veil.client.folder_tree import Plan, get_tree, plan_tree, put_tree, scan
from veil.client.folders import create_folder, folder_entry, read_folder
from veil.client.upload import upload
from veil.errors import CapError, UsageError
from veil.format.folder import FILE, Entry
from veil.format.folder_caps import new_folder
from veil.testing.grid import Grid


@pytest.fixture
def grid(tmp_path: Path) -> Iterator[Grid]:
    g = Grid(tmp_path / "grid", 10)
    yield g
    g.close()


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = b""
        for f in files:
            out[os.path.relpath(os.path.join(dirpath, f), root)] = Path(dirpath, f).read_bytes()
    return out


def test_a_tree_round_trips(grid: Grid, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "empty-dir").mkdir()
    (src / "zero").write_bytes(b"")
    (src / "a" / "naïve.txt").write_text("x")
    (src / "a" / "b" / "blob").write_bytes(os.urandom(300_000))
    (src / "link").symlink_to("/etc/passwd")
    warnings: list[str] = []
    tree = scan(src, warnings.append)
    assert any("symlink" in w for w in warnings)
    net = grid.network()
    wcap, stats = put_tree(net, tree)
    assert (stats.files, stats.folders) == (3, 4)
    dest = tmp_path / "out"
    plan = plan_tree(net, read_folder(net, wcap.read_cap()), dest, force=False)
    assert get_tree(net, plan, dest) == []
    want = _tree(src)
    del want["link"]
    assert _tree(dest) == want


def test_names_a_folder_may_not_hold_are_refused_before_upload(grid: Grid, tmp_path: Path) -> None:
    src = tmp_path / "clash"
    src.mkdir()
    (src / "README").write_text("1")
    (src / "readme").write_text("2")
    with pytest.raises(UsageError, match="case-folded"):
        scan(src, lambda _: None)
    bad = tmp_path / "ctl"
    bad.mkdir()
    (bad / "a\x01b").write_text("1")
    with pytest.raises(UsageError, match="control character"):
        scan(bad, lambda _: None)


def test_a_hostile_folder_cannot_write_outside_the_target(grid: Grid, tmp_path: Path) -> None:
    net = grid.network()
    res = upload(net, io.BytesIO(b"evil"), 4, "x")
    cap = res.cap.to_string()
    names = ["../x", "/etc/x", "a/../../x", "..", ".", "n\x00ul", "e\u0301", "\u00e9", "CAFE", "cafe", "ok"]
    hostile = {n: Entry(n, FILE, cap, size=4) for n in names}
    w = create_folder(net, hostile)
    loop = new_folder()
    create_folder(net, {"me": folder_entry(loop, "me", loop)}, loop)  # a folder holding itself
    top = new_folder()
    w2 = create_folder(net, {**hostile, "sub": folder_entry(top, "sub", loop), "ro": folder_entry(w, "ro", w)}, top)
    root = tmp_path / "jail"
    dest = root / "target"
    plan = plan_tree(net, read_folder(net, w2), dest, force=False)
    warnings = get_tree(net, plan, dest)
    assert sum("refused" in x for x in warnings) >= 6 and any("renamed" in x for x in warnings)
    assert any("cycle" in x for x in warnings)
    outside = {p for p in _tree(tmp_path) if not p.startswith(("jail/target", "grid"))}
    assert outside <= {"jail/", "jail/target/"}
    got = _tree(dest)
    assert got["ok"] == b"evil" and got["\u00e9"] == b"evil" and {p for p in got if "caf" in p.lower() and "/" not in p} == {"CAFE", "cafe (2)"}
    for p in got:
        assert ".." not in Path(p).parts


def test_an_existing_file_is_not_overwritten_without_force(grid: Grid, tmp_path: Path) -> None:
    net = grid.network()
    res = upload(net, io.BytesIO(b"new"), 3, "f")
    w = create_folder(net, {"f": Entry("f", FILE, res.cap.to_string(), size=3)})
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "f").write_bytes(b"old")
    with pytest.raises(UsageError, match="exists"):
        plan_tree(net, read_folder(net, w), dest, force=False)
    (tmp_path / "elsewhere").write_bytes(b"keep")
    (dest / "f").unlink()
    (dest / "f").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="links are never followed"):
        plan_tree(net, read_folder(net, w), dest, force=True)
    (dest / "f").unlink()
    plan: Plan = plan_tree(net, read_folder(net, w), dest, force=True)
    get_tree(net, plan, dest)
    assert (dest / "f").read_bytes() == b"new" and (tmp_path / "elsewhere").read_bytes() == b"keep"


def test_aliases_and_folder_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_HOME", str(tmp_path))
    w = new_folder()
    add_alias("docs", w.to_string())
    assert load_aliases() == {"docs": w.to_string()}
    assert oct((tmp_path / "aliases.json").stat().st_mode & 0o777) == "0o600"
    fp = parse_folder_path("docs:photos/2024")
    assert fp.cap == w and fp.parts == ["photos", "2024"]
    fp = parse_folder_path(w.read_cap().to_string() + "/a")
    assert fp.cap == w.read_cap() and fp.parts == ["a"]
    assert parse_folder_path(w.read_cap().link("https://gw")).cap == w.read_cap()
    with pytest.raises(UsageError, match="no alias"):
        parse_folder_path("nope:x")
    with pytest.raises(UsageError):
        parse_folder_path("docs:a/../b")
    with pytest.raises(CapError):
        parse_folder_path("veil:fw1:garbled")
    with pytest.raises(CapError):
        parse_folder_path("just-a-word")
    with pytest.raises(UsageError, match="exists"):
        add_alias("docs", new_folder().to_string())
    with pytest.raises(UsageError, match="bad alias"):
        add_alias("veil", w.to_string())


def test_check_and_repair_a_tree_with_its_verify_cap(grid: Grid, tmp_path: Path) -> None:
    from veil.client.folder_health import Health, walk_health
    from veil.client.mutable_io import slot_nodes

    src = tmp_path / "t"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(os.urandom(5000))
    (src / "g").write_bytes(b"g")
    net = grid.network()
    wcap, _ = put_tree(net, scan(src, lambda _: None))
    lost = grid.node(slot_nodes(net, wcap.slot_id).nodes[0])
    grid.wipe(lost)  # a disk replaced: its shares and slot versions are gone
    seen: list[Health] = []
    walk_health(net, wcap.verify_cap(), seen.append)
    assert [h.kind for h in seen].count("folder") == 2 and [h.kind for h in seen].count("file") == 2
    assert any(not h.ok for h in seen)
    fixed: list[Health] = []
    walk_health(net, wcap.verify_cap(), fixed.append, fix=True)
    after: list[Health] = []
    walk_health(net, wcap.verify_cap(), after.append)
    assert all(h.ok for h in after), [h for h in after if not h.ok]
    assert lost.mutable.get(wcap.slot_id) is not None


def test_a_paged_tree_is_walked_checked_and_repaired(grid: Grid, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from veil.client.folder_health import Health, walk_health
    from veil.format import folder_pages

    monkeypatch.setattr(folder_pages, "INLINE_MAX", 1500)  # small pages, so a few files make several
    monkeypatch.setattr(folder_pages, "PAGE_TARGET", 800)
    src = tmp_path / "paged"
    src.mkdir()
    for i in range(30):
        (src / f"file-{i:02d}").write_bytes(os.urandom(100 + i))
    net = grid.network()
    wcap, _ = put_tree(net, scan(src, lambda _: None))
    snap = read_folder(net, wcap.read_cap())
    assert len(snap.content.pages) >= 3 and len(snap.entries) == 30
    dest = tmp_path / "paged.out"
    get_tree(net, plan_tree(net, snap, dest, force=False), dest)
    assert _tree(dest) == _tree(src)
    seen: list[Health] = []
    walk_health(net, wcap.verify_cap(), seen.append)
    kinds = [h.kind for h in seen]
    assert kinds.count("page") == len(snap.content.pages) and kinds.count("file") == 30 and all(h.ok for h in seen)
    grid.wipe(grid.nodes[0])
    walk_health(net, wcap.verify_cap(), lambda h: None, fix=True)
    after: list[Health] = []
    walk_health(net, wcap.verify_cap(), after.append)
    assert len(after) == len(seen) and all(h.ok for h in after)
