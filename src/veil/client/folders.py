"""Folders from the client: read one (the newest version a quorum vouches for), walk a path
inside it, and change it by compare-and-swap with the merge rule, never losing an update.

docs/specs/folders.md, "What the client calls next". An edit is a function from the entries
the user sees to operations (format/folder_ops.py); the operations are computed once, against
the version read, and applied again to whatever version won each lost race, with other
writers' unsaved heads merged in as the state machine offers them. A change that overlaps
another writer's fails with WriteConflictError; nothing is overwritten silently.

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from veil.errors import IntegrityError, NotFoundError, UsageError, WriteConflictError
from veil.format.folder import FOLDER, Entry
from veil.format.folder_caps import (
    FolderCap,
    FolderReadCap,
    FolderWriteCap,
    new_folder,
    parse_folder_cap,
    read_cap_of,
)
from veil.format.folder_ops import Op, Put, apply_ops, diff_ops
from veil.format.folder_seal import open_child_write_cap, seal_child_write_cap
from veil.format.mutable import Checkstring, SlotRecord
from veil.format.mutable_cas import Attempt, Latest
from veil.format.names import shown

from .folder_body import Content, open_content, seal_content
from .mutable_io import SlotNodes, fetch_version, read_slot, slot_nodes, slot_versions, write_slot
from .network import Network


@dataclass
class Snapshot:
    """One folder as read: the version, its entries, and the caps to go on with."""

    rcap: FolderReadCap
    wcap: FolderWriteCap | None
    sn: SlotNodes
    latest: Latest
    content: Content

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry (a big folder's pages all fetched)."""
        return self.content.entries

    def get(self, name: str) -> Entry | None:
        """One entry (a big folder fetches the one page that can hold it)."""
        return self.content.get(name)

    @property
    def seq(self) -> int:
        return self.latest.record.seq if self.latest.record is not None else 0


def read_folder(net: Network, cap: FolderCap, seq: int | None = None) -> Snapshot:
    """The folder's current version (or the kept version ``seq``), its pages opened."""
    rcap = read_cap_of(cap)
    wcap = cap if isinstance(cap, FolderWriteCap) else None
    sn = slot_nodes(net, rcap.slot_id)
    latest = read_slot(net, sn).latest
    if seq is not None and (latest.record is None or latest.record.seq != seq):
        # Two writers racing can each leave a version N (one never saved): take the one most
        # of the folder's nodes keep.
        kept = sorted(((n, cs) for cs, n in slot_versions(net, sn).items() if cs.seq == seq), reverse=True)
        rec = next((r for _, cs in kept if (r := fetch_version(net, sn, seq, cs)) is not None), None)
        if rec is None:
            raise NotFoundError(f"no node keeps version {seq} of this folder (`veil ls --versions` lists them)")
        latest = Latest(rec, True, (), ())
    return Snapshot(rcap, wcap, sn, latest, open_content(net, rcap, latest.record))


def child_caps(parent: Snapshot | tuple[FolderReadCap, FolderWriteCap | None], e: Entry) -> tuple[FolderReadCap, FolderWriteCap | None]:
    """A folder entry's read cap, and its write cap when the parent's writer sealed one for us."""
    pw = parent.wcap if isinstance(parent, Snapshot) else parent[1]
    if e.kind != FOLDER:
        raise UsageError(f"{shown(e.name)} is a file, not a folder")
    rc = parse_folder_cap(e.cap)
    assert isinstance(rc, FolderReadCap)
    wc = None
    if pw is not None and e.wcap is not None:
        try:
            wc = open_child_write_cap(pw, rc.slot_id, e.wcap)
        except IntegrityError:
            wc = None  # sealed for another parent, or tampered with: read-only from here
    return rc, wc


def walk(net: Network, cap: FolderCap, parts: list[str], seq: int | None = None) -> tuple[Snapshot, Entry | None]:
    """Follow ``parts`` from the folder ``cap``: the last folder reached and, when the path ends
    at an entry, that entry (None: the path names the folder itself). ``seq`` applies to the root."""
    snap = read_folder(net, cap, seq)
    for i, name in enumerate(parts):
        e = snap.get(name)
        if e is None:
            raise NotFoundError(f"no entry {shown('/'.join(parts[: i + 1]))} in this folder")
        if i == len(parts) - 1:
            return snap, e
        rc, wc = child_caps(snap, e)
        snap = read_folder(net, wc or rc)
    return snap, None


def folder_at(net: Network, cap: FolderCap, parts: list[str], seq: int | None = None) -> Snapshot:
    """The folder a path names (UsageError if it names a file)."""
    snap, e = walk(net, cap, parts, seq)
    if e is None:
        return snap
    rc, wc = child_caps(snap, e)
    return read_folder(net, wc or rc)


def writable(snap: Snapshot, what: str = "this folder") -> FolderWriteCap:
    if snap.wcap is None:
        raise UsageError(f"{what} is read-only here: a write cap of it (or of a folder above it) is needed")
    return snap.wcap


Edit = Callable[[dict[str, Entry]], list[Op]]


def _op_names(ops: list[Op]) -> tuple[list[str], list[str]]:
    """The names ``ops`` touch, and those they may add (whose collisions must be checked)."""
    names = [op.entry.name if isinstance(op, Put) else op.old.name for op in ops]
    return names, [op.entry.name for op in ops if isinstance(op, Put) and op.old is None]


def edit_folder(net: Network, snap: Snapshot, ops: list[Op]) -> Checkstring:
    """Apply ``ops`` (computed against ``snap``) as a new version; the version saved.

    Only the pages the operations touch are read and rewritten (and, for an added name, the
    pages that could hold a name colliding with it)."""
    wcap = writable(snap)
    cache: dict[bytes, Content] = {}
    if snap.latest.record is not None:
        cache[snap.latest.record.hash] = snap.content

    def loaded(rec: SlotRecord | None) -> Content:
        if rec is None:
            return Content()
        if rec.hash not in cache:
            cache[rec.hash] = open_content(net, snap.rcap, rec)
        return cache[rec.hash]

    def build(att: Attempt) -> tuple[bytes, list[SlotRecord]]:
        base = loaded(att.base)
        head_ops: list[tuple[SlotRecord, list[Op]]] = []
        for head, since in att.heads:  # other writers' unsaved versions (rare): read whole
            common = fetch_version(net, snap.sn, since.seq, since)
            if common is not None:
                head_ops.append((head, diff_ops(loaded(common).entries, loaded(head).entries)))
        names, added = _op_names(ops)
        for _, hops in head_ops:
            more, more_added = _op_names(hops)
            names, added = names + more, added + more_added
        base.ensure(names, added)
        entries = apply_ops(base.known(), ops)
        merged: list[SlotRecord] = []
        for head, hops in head_ops:
            try:
                entries = apply_ops(entries, hops)
            except (WriteConflictError, UsageError):
                continue  # its change overlaps ours; it was never saved, so it is left alone
            merged.append(head)
        return seal_content(net, wcap, att.seq, entries, base), merged

    return write_slot(net, snap.sn, wcap.signing_key, snap.latest, build).record


def create_folder(net: Network, entries: dict[str, Entry] | None = None,
                  wcap: FolderWriteCap | None = None) -> FolderWriteCap:  # fmt: skip
    """A new folder (``wcap`` given: that one) holding ``entries``: its first version, written
    with expect=0 on every node."""
    wcap = wcap or new_folder()
    sn = slot_nodes(net, wcap.slot_id)
    items = dict(entries or {})

    def build(att: Attempt) -> tuple[bytes, list[SlotRecord]]:
        # A base can only be an earlier try of ours (nobody else holds this fresh seed): the
        # content is the same whatever it held, so building on it makes a retry idempotent.
        return seal_content(net, wcap, att.seq, items), []

    write_slot(net, sn, wcap.signing_key, Latest(None, True, (), ()), build)
    return wcap


def folder_entry(parent: FolderWriteCap | None, name: str, child: FolderWriteCap | FolderReadCap,
                 mtime: int | None = None) -> Entry:  # fmt: skip
    """The entry naming a child folder; its write cap sealed for the parent's writers if we have it."""
    rc = child.read_cap() if isinstance(child, FolderWriteCap) else child
    wc = seal_child_write_cap(parent, child) if parent is not None and isinstance(child, FolderWriteCap) else None
    return Entry(name=name, kind=FOLDER, cap=rc.to_string(), size=0,
                 mtime=int(time.time()) if mtime is None else mtime, wcap=wc)  # fmt: skip


def add_entry(net: Network, snap: Snapshot, entry: Entry, replace_existing: bool = False) -> Checkstring:
    """Put ``entry`` into the folder; UsageError if its name is taken (unless replacing)."""
    old = snap.get(entry.name)
    if old is not None and not replace_existing:
        raise UsageError(f"{shown(entry.name)} already exists in this folder")
    return edit_folder(net, snap, [Put(entry, old)])


def make_folder(net: Network, snap: Snapshot, name: str) -> FolderWriteCap:
    """A new empty child folder ``name`` of the folder ``snap`` (which must be writable)."""
    parent = writable(snap)
    if snap.get(name) is not None:
        raise UsageError(f"{shown(name)} already exists in this folder")
    child = create_folder(net)
    add_entry(net, snap, folder_entry(parent, name, child))
    return child


def renamed(e: Entry, name: str) -> Entry:
    return replace(e, name=name)
