"""Entry names (format/names.py): what writers refuse, and how readers map names to local files."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import UsageError
from veil.format.names import check_name, fold, local_names, name_problem, normalise, shown, split_path

BAD = ["", ".", "..", "../x", "/etc/x", "a/../../x", "a/b", "a\\b", "C:\\x", "nul\x00byte", "bell\x07", "del\x7f",
       "csi\x9b", "x" * 256, "é" * 128, "\ud800", "Cafe\u0301"]
GOOD = ["a", "a.txt", ".hidden", "...", "x" * 255, "Café", "日本語.md", "with space", "emoji 🎉", "é" * 127]


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused(name: str) -> None:
    assert name_problem(name) is not None
    with pytest.raises(UsageError):
        check_name(name)


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_normalise_and_fold() -> None:
    assert normalise("Cafe\u0301") == "Café"
    assert fold("Café") == fold("CAFE\u0301") == fold("café")
    assert fold("Straße") == fold("STRASSE")
    assert name_problem(42) is not None


def test_shown_escapes_control_characters() -> None:
    assert "\x1b" not in shown("evil\x1b[2Jname") and "\\x1b" in shown("evil\x1b[2Jname")


def test_split_path() -> None:
    assert split_path("a/b/c") == ["a", "b", "c"]
    assert split_path("/a/b/") == ["a", "b"]
    assert split_path("") == []
    assert split_path("Cafe\u0301/x") == ["Café", "x"]
    for bad in ("a//b", "a/../b", "a/./b", "../x"):
        with pytest.raises(UsageError):
            split_path(bad)
    with pytest.raises(UsageError, match="deeper"):
        split_path("/".join(["a"] * 65))


def test_a_malicious_listing_cannot_write_outside_the_target(tmp_path: Path) -> None:
    names = ["../x", "/etc/x", "a/../../x", "..", ".", "ok", "OK", "Ok", "Cafe\u0301", "Café", "café", "n\x00ul", "good.txt",
             "GOOD.txt"]
    plan = local_names(names)
    assert [p.name for p in plan] == names
    target = tmp_path / "out"
    target.mkdir()
    written = []
    for p in plan:
        if p.local is None:
            assert p.warning and "refused" in p.warning
            continue
        dest = (target / p.local).resolve()
        assert dest.parent == target.resolve()
        dest.write_bytes(b"x")
        written.append(p.local)
    assert sorted(os.listdir(target)) == sorted(written)
    assert len({fold(n) for n in written}) == len(written)  # distinct on a case-insensitive disk too
    by_name = {p.name: p for p in plan}
    assert by_name["ok"].local == "ok" and by_name["ok"].warning is None
    assert by_name["OK"].local == "OK (2)" and "renamed" in (by_name["OK"].warning or "")
    assert by_name["GOOD.txt"].local == "GOOD (2).txt"
    assert by_name["Cafe\u0301"].local is None  # not NFC: refused
    assert by_name["café"].local == "café (2)"
    assert not (tmp_path / "x").exists()


@given(st.lists(st.text(max_size=12), max_size=20))
def test_local_names_are_always_safe_and_distinct(names: list[str]) -> None:
    plan = local_names(names)
    locals_ = [p.local for p in plan if p.local is not None]
    assert all(name_problem(n) is None for n in locals_)
    assert len({fold(n) for n in locals_}) == len(locals_)
    assert all(unicodedata.normalize("NFC", n) == n for n in locals_)
    assert all((p.local is None) == (name_problem(p.name) is not None) or p.warning for p in plan)
