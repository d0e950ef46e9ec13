"""Edits as operations and the merge rule (format/folder_ops.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from folder_strategies import file_entry, folder_entry
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import UsageError, WriteConflictError
from veil.format.folder_ops import Put, Remove, apply_ops, diff_ops, rename, same

A, B, C = file_entry("a", 1), file_entry("b", 2), folder_entry("c", 3)
BASE = {"a": A, "b": B}


def test_put_remove_and_already_done() -> None:
    out = apply_ops(BASE, [Put(C), Remove(A)])
    assert out == {"b": B, "c": C}
    assert apply_ops(out, [Put(C), Remove(A)]) == out  # re-applied on a version that has them: done
    assert BASE == {"a": A, "b": B}  # input untouched


def test_replace_needs_the_old_entry() -> None:
    a2 = replace(A, cap=file_entry("a", 9).cap)
    assert apply_ops(BASE, [Put(a2, A)])["a"] == a2
    with pytest.raises(WriteConflictError, match="another writer"):
        apply_ops(BASE, [Put(a2)])  # the writer thought "a" was free
    with pytest.raises(WriteConflictError):
        apply_ops({"a": replace(A, size=5), "b": B}, [Put(a2, A)])  # someone else changed it first


def test_remove_of_a_changed_entry_conflicts_and_of_a_gone_one_is_done() -> None:
    with pytest.raises(WriteConflictError):
        apply_ops({"a": replace(A, size=99)}, [Remove(A)])
    assert apply_ops({"b": B}, [Remove(A)]) == {"b": B}


def test_names_are_checked_and_folded_collisions_refused() -> None:
    with pytest.raises(UsageError):
        apply_ops({}, [Put(file_entry("../x"))])
    with pytest.raises(UsageError, match="collides"):
        apply_ops({"a": A}, [Put(file_entry("A", 4))])
    with pytest.raises(UsageError, match="collides"):
        apply_ops({"Café": file_entry("Café")}, [Put(file_entry("CAFÉ"))])


def test_rename_is_atomic_and_detects_a_moved_source() -> None:
    assert apply_ops(BASE, rename(A, "z")) == {"b": B, "z": replace(A, name="z")}
    with pytest.raises(WriteConflictError):
        apply_ops({"a": A, "z": C}, rename(A, "z"))  # target appeared meanwhile
    assert apply_ops({"a": A, "z": C}, rename(A, "z", replacing=C))["z"] == replace(A, name="z")


def test_same_ignores_the_salted_write_cap() -> None:
    assert same(replace(C, wcap=bytes(80)), replace(C, wcap=bytes([1]) * 80))
    assert not same(A, replace(A, size=2))


@given(st.sets(st.integers(0, 30), max_size=8), st.sets(st.integers(31, 60), max_size=8), st.sets(st.integers(0, 60), max_size=5))
def test_disjoint_writers_merge_in_either_order(xs: set[int], ys: set[int], base_ids: set[int]) -> None:
    base = {f"n{i}": file_entry(f"n{i}", i) for i in base_ids}
    ops_x = [Put(file_entry(f"n{i}", 100 + i), base.get(f"n{i}")) for i in sorted(xs)]
    ops_y = [Remove(base[f"n{i}"]) if f"n{i}" in base else Put(file_entry(f"n{i}", i)) for i in sorted(ys)]
    xy = apply_ops(apply_ops(base, ops_x), ops_y)
    yx = apply_ops(apply_ops(base, ops_y), ops_x)
    assert xy == yx
    for op in ops_x:
        assert isinstance(op, Put) and same(xy[op.entry.name], op.entry)


@given(st.dictionaries(st.integers(0, 20), st.integers(0, 3), max_size=10), st.dictionaries(st.integers(0, 20), st.integers(0, 3), max_size=10))
def test_diff_ops_turn_one_version_into_the_other(a: dict[int, int], b: dict[int, int]) -> None:
    old = {f"n{i}": file_entry(f"n{i}", v) for i, v in a.items()}
    new = {f"n{i}": file_entry(f"n{i}", v) for i, v in b.items()}
    assert apply_ops(old, diff_ops(old, new)) == new
    assert apply_ops(new, diff_ops(old, new)) == new  # already there: done


def test_diff_ops_of_a_conflicting_version_fail_the_merge() -> None:
    anchor = {"a": A}
    theirs = {"a": replace(A, size=7)}
    ours = {"a": replace(A, size=8)}
    with pytest.raises(WriteConflictError):
        apply_ops(ours, diff_ops(anchor, theirs))
