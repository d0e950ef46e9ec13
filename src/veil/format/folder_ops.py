"""Folder edits as operations, and the rule that merges them onto whatever version won (pure).

docs/specs/folders.md, "Concurrent writers". A writer does not send a new listing; it keeps the
operations it means (put this entry where that one was; remove that entry) and applies them to
the version it is based on. When another writer won the race, the same operations are applied to
the winner: an operation whose result is already there is done; one whose expected old value is
still there applies; anything else is a conflict and the whole change fails with
WriteConflictError, never a silent overwrite of the other writer's change.

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from veil.errors import UsageError, WriteConflictError
from veil.format.folder import Entry
from veil.format.names import check_name, fold, shown


@dataclass(frozen=True)
class Put:
    """Make ``entry`` the entry of its name; ``old`` is the entry the writer saw there (None: absent)."""

    entry: Entry
    old: Entry | None = None


@dataclass(frozen=True)
class Remove:
    """Remove the entry ``old`` (the one the writer saw under ``old.name``)."""

    old: Entry


Op = Put | Remove


def same(a: Entry | None, b: Entry | None) -> bool:
    """Two entries are the same child if kind, cap, size, mtime and type agree (a sealed child
    write cap is salted afresh by every writer, so it does not count)."""
    if a is None or b is None:
        return a is b
    return (a.name, a.kind, a.cap, a.size, a.mtime, a.mime) == (b.name, b.kind, b.cap, b.size, b.mtime, b.mime)


def apply_ops(entries: Mapping[str, Entry], ops: Iterable[Op]) -> dict[str, Entry]:
    """``entries`` with ``ops`` applied in order (a new dict); WriteConflictError if another
    writer changed an entry these ops expected unchanged, UsageError for a name a writer may not
    use or one that collides with an existing entry."""
    out = dict(entries)
    folded = {fold(n): n for n in out}
    for op in ops:
        if isinstance(op, Put):
            name = check_name(op.entry.name)
            cur = out.get(name)
            if same(cur, op.entry):
                continue
            if not same(cur, op.old):
                raise WriteConflictError(
                    f"{shown(name)} was changed by another writer at the same time; your change was not saved")
            if cur is None:
                other = folded.get(fold(name))
                if other is not None:
                    raise UsageError(f"{shown(name)} collides with the existing entry {shown(other)} "
                                     "(same name once normalised and case-folded)")
            out[name] = op.entry
            folded[fold(name)] = name
        else:
            name = op.old.name
            cur = out.get(name)
            if cur is None:
                continue  # already gone: what this op wanted
            if not same(cur, op.old):
                raise WriteConflictError(
                    f"{shown(name)} was changed by another writer at the same time; it was not removed")
            del out[name]
            folded.pop(fold(name), None)
    return out


def diff_ops(old: Mapping[str, Entry], new: Mapping[str, Entry]) -> list[Op]:
    """The operations that turn ``old`` into ``new``: another writer's changes since a common
    version, to merge its unmerged version into ours (a conflict then fails the merge, not ours)."""
    ops: list[Op] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if same(a, b):
            continue
        ops.append(Remove(a) if b is None else Put(b, a))  # type: ignore[arg-type]
    return ops


def rename(old: Entry, new_name: str, replacing: Entry | None = None) -> list[Op]:
    """``veil mv``: the entry under a new name (replacing ``replacing`` if given), atomically."""
    from dataclasses import replace

    return [Remove(old), Put(replace(old, name=new_name), replacing)]
