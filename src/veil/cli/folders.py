"""`veil mkdir`, `veil ls`, `veil rm`, `veil mv`, `veil ln`, `veil cat`, `veil restore`: folders.

Every FOLDER argument is a folder cap with an optional path (``veil:fw1:…/a/b``), an alias
with a path (``docs:a/b``, `veil alias`), or a folder link.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from veil.client.aliases import FolderPath, add_alias, parse_folder_path
from veil.client.download import download, open_file
from veil.client.folders import (
    Snapshot,
    add_entry,
    child_caps,
    create_folder,
    edit_folder,
    folder_at,
    folder_entry,
    make_folder,
    read_folder,
    walk,
    writable,
)
from veil.client.mutable_io import slot_versions
from veil.client.network import Network
from veil.errors import NotFoundError, UsageError
from veil.format.caps import parse_read_cap
from veil.format.folder import FILE, FOLDER, Entry
from veil.format.folder_caps import FolderReadCap, FolderVerifyCap, FolderWriteCap, parse_folder_cap
from veil.format.folder_ops import Remove, diff_ops, rename
from veil.format.folder_seal import open_child_write_cap
from veil.format.names import normalise, shown
from veil.format.remote_text import clean

from .common import human, link_text, network_option, open_network
from .jsonout import json_option


def _caps(net: Network, w: FolderWriteCap) -> None:
    click.echo(f"write cap:  {w.to_string()}")
    click.echo(f"read cap:   {w.read_cap().to_string()}")
    click.echo(f"verify cap: {w.verify_cap().to_string()}")
    click.echo(f"link:       {link_text(w.read_cap().link(net.gateway) if net.gateway else None)}")
    if net.gateway:
        click.echo(f"write link: {w.write_link(net.gateway)}  (secret, as the write cap: lets a browser add files)")


def _parent_and_name(fp: FolderPath) -> tuple[list[str], str]:
    if not fp.parts:
        raise UsageError(f"{clean(fp.text, 120)}: give a path inside the folder (FOLDER/name)")
    return fp.parts[:-1], fp.parts[-1]


@click.command()
@click.argument("folder", required=False)
@click.option("--alias", "alias_name", default=None, metavar="NAME", help="Also save the new folder's write cap as NAME.")
@network_option
def mkdir(folder: str | None, alias_name: str | None, network_path: Path | None) -> None:
    """Make a folder: a new one (no argument), or FOLDER/path inside a writable folder.

    Prints its write cap (keep it secret), read cap (share it), verify cap (for repairers) and
    a folder link for the gateway."""
    net = open_network(network_path)
    if folder is None:
        w = create_folder(net)
    else:
        fp = parse_folder_path(folder)
        parents, name = _parent_and_name(fp)
        w = make_folder(net, folder_at(net, fp.cap, parents), name)
    if alias_name:
        add_alias(alias_name, w.to_string())
    _caps(net, w)


def _when(t: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t is not None else "-" * 16


def _row(e: Entry) -> dict[str, Any]:
    return {"name": e.name, "kind": e.kind, "size": e.size, "mtime": e.mtime, "mime": e.mime, "cap": e.cap}


def _versions(net: Network, fp: FolderPath, as_json: bool) -> None:
    snap = folder_at(net, fp.cap, fp.parts)
    kept = slot_versions(net, snap.sn)
    rows = []
    for cs, holders in sorted(kept.items(), reverse=True):
        try:
            entries: int | None = len(read_folder(net, snap.rcap, cs.seq).entries)
        except (NotFoundError, UsageError):
            entries = None
        rows.append({"version": cs.seq, "hash": cs.hash.hex(), "nodes": holders, "entries": entries,
                     "current": cs.seq == snap.seq})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = "*" if r["current"] else " "
        n = "?" if r["entries"] is None else r["entries"]
        click.echo(f"{mark} version {r['version']:>6}  {n:>6} entries  kept by {r['nodes']} of {snap.sn.n} nodes")


@click.command(name="ls")
@click.argument("folder")
@click.option("-l", "long", is_flag=True, help="Long listing: kind, size, time, name.")
@click.option("--json", "as_json", is_flag=True, help="Entries as JSON (name, kind, size, mtime, mime, cap).")
@click.option("--versions", is_flag=True, help="List the versions the nodes keep (restore one with `veil restore`).")
@click.option("--version", "seq", type=int, default=None, metavar="N", help="List version N instead of the current one.")
@network_option
def ls(folder: str, long: bool, as_json: bool, versions: bool, seq: int | None, network_path: Path | None) -> None:
    """List a folder (or show one entry)."""
    fp = parse_folder_path(folder)
    net = open_network(network_path)
    if versions:
        _versions(net, fp, as_json)
        return
    snap, e = walk(net, fp.cap, fp.parts, seq)
    if e is not None and e.kind == FOLDER:
        rc, wc = child_caps(snap, e)
        snap, e = read_folder(net, wc or rc), None
    rows = [e] if e is not None else [snap.entries[n] for n in sorted(snap.entries)]
    if as_json:
        click.echo(json.dumps([_row(r) for r in rows], indent=2, ensure_ascii=False))
        return
    for r in rows:
        name = clean(r.name, 300) + ("/" if r.kind == FOLDER else "")
        if long:
            size = human(r.size) if r.kind == FILE else "-"
            click.echo(f"{'dir ' if r.kind == FOLDER else 'file'}  {size:>9}  {_when(r.mtime)}  {name}")
        else:
            click.echo(name)


@click.command()
@click.argument("path", metavar="FOLDER/name|CAP")
@click.option("--key", "key_hex", default=None, metavar="HEX",
              help="With a file CAP: its deletion key (`veil put --json`: delete_key) instead of $VEIL_HOME/delete.key.")
@json_option
@network_option
def rm(path: str, key_hex: str | None, as_json: bool, network_path: Path | None) -> None:
    """Remove the entry FOLDER/name (a subfolder is unlinked, its contents are not touched), or
    delete the file behind CAP (a read cap, verify cap or share link) from the nodes.

    Deleting a file needs its deletion key: derived from $VEIL_HOME/delete.key for files uploaded
    from here, or --key. Nodes refuse anyone else; a deleted file cannot be read back."""
    from .delete import file_cap, rm_file

    vc = file_cap(path)
    if vc is not None:
        rm_file(vc, key_hex, as_json, network_path)
        return
    if key_hex is not None or as_json:
        raise UsageError("--key and --json are for deleting a file CAP, not a folder entry")
    net = open_network(network_path)
    snap, e = _existing_entry(net, parse_folder_path(path))
    edit_folder(net, snap, [Remove(e)])


def _existing_entry(net: Network, fp: FolderPath) -> tuple[Snapshot, Entry]:
    """The folder holding FOLDER/name (which must be writable) and the entry ``name`` in it."""
    parents, name = _parent_and_name(fp)
    snap = folder_at(net, fp.cap, parents)
    e = snap.get(name)
    if e is None:
        raise NotFoundError(f"no entry {shown(name)} in that folder")
    writable(snap)
    return snap, e


def _reseal(src: Snapshot, dst: Snapshot, e: Entry) -> Entry:
    """A folder entry moving to another parent: its sealed write cap re-sealed for the new one."""
    if e.kind != FOLDER or e.wcap is None or src.wcap is None:
        return e
    rc = parse_folder_cap(e.cap)
    assert isinstance(rc, FolderReadCap)
    child = open_child_write_cap(src.wcap, rc.slot_id, e.wcap)
    return folder_entry(writable(dst), e.name, child, e.mtime)


@click.command()
@click.argument("source")
@click.argument("dest")
@network_option
def mv(source: str, dest: str, network_path: Path | None) -> None:
    """Move or rename FOLDER/a to FOLDER/b (into b if b is a folder). One version when both are in
    the same folder; otherwise the entry is added to the new folder first, then removed from the old."""
    sp, dp = parse_folder_path(source), parse_folder_path(dest)
    net = open_network(network_path)
    src, e = _existing_entry(net, sp)
    sname = _parent_and_name(sp)[1]  # as typed
    if e.kind == FOLDER and sp.cap == dp.cap and dp.parts[: len(sp.parts)] == sp.parts:
        raise UsageError("cannot move a folder into itself")
    if not dp.parts:
        dst, new_name = folder_at(net, dp.cap, []), sname
    else:
        dst, new_name = folder_at(net, dp.cap, dp.parts[:-1]), dp.parts[-1]
        target = dst.get(new_name)
        if target is not None and target.kind == FOLDER:
            dst, new_name = folder_at(net, dp.cap, dp.parts), sname
        elif target is not None:
            raise UsageError(f"{clean(dest, 120)} exists; remove it first")
    if dst.get(new_name) is not None:
        raise UsageError(f"{shown(new_name)} already exists in the destination folder")
    if dst.rcap.slot_id == src.rcap.slot_id:
        edit_folder(net, src, rename(e, new_name))
        return
    add_entry(net, dst, replace(_reseal(src, dst, e), name=new_name))
    edit_folder(net, src, [Remove(e)])


@click.command()
@click.argument("cap")
@click.argument("path")
@network_option
def ln(cap: str, path: str, network_path: Path | None) -> None:
    """Link CAP (a file read cap, or a folder write or read cap) into a folder as FOLDER/name."""
    fp = parse_folder_path(path)
    parents, name = _parent_and_name(fp)
    net = open_network(network_path)
    snap = folder_at(net, fp.cap, parents)
    parent = writable(snap)
    name = normalise(name)
    if cap.strip().startswith("veil:r1:") or "/f/" in cap:
        rc = parse_read_cap(cap)
        loc, meta = open_file(net, rc)
        mtime = meta.get("mtime")
        entry = Entry(name=name, kind=FILE, cap=rc.to_string(), size=loc.manifest.size,
                      mtime=mtime if isinstance(mtime, int) else None,
                      mime=str(meta.get("type"))[:128] if meta.get("type") else None)  # fmt: skip
    else:
        fc = parse_folder_cap(cap)
        if isinstance(fc, FolderVerifyCap):
            raise UsageError("a verify cap cannot be linked: it gives no read access")
        read_folder(net, fc)  # it must exist
        entry = folder_entry(parent, name, fc)
    add_entry(net, snap, entry)


@click.command()
@click.argument("path")
@network_option
def cat(path: str, network_path: Path | None) -> None:
    """Write the file FOLDER/path to stdout."""
    fp = parse_folder_path(path)
    net = open_network(network_path)
    _, e = walk(net, fp.cap, fp.parts)
    if e is None or e.kind != FILE:
        raise UsageError(f"{clean(path, 120)} is a folder, not a file")
    download(net, parse_read_cap(e.cap), sys.stdout.buffer)
    sys.stdout.buffer.flush()


@click.command()
@click.argument("folder")
@click.option("--version", "seq", type=int, required=True, metavar="N", help="The version to bring back (`veil ls --versions`).")
@network_option
def restore(folder: str, seq: int, network_path: Path | None) -> None:
    """Make version N the folder's content again, as a new version (later ones stay listed)."""
    fp = parse_folder_path(folder)
    net = open_network(network_path)
    cur = folder_at(net, fp.cap, fp.parts)
    writable(cur)
    old = read_folder(net, cur.wcap or cur.rcap, seq)
    ops = diff_ops(cur.entries, {n: _rekey(cur, old, e) for n, e in old.entries.items()})
    if not ops:
        click.echo(f"the folder already holds what version {seq} held")
        return
    saved = edit_folder(net, cur, ops)
    click.echo(f"restored version {seq} as version {saved.seq}: {len(ops)} entries changed")


def _rekey(cur: Snapshot, old: Snapshot, e: Entry) -> Entry:
    """An old entry as the current one if they are the same child (its sealed write cap kept)."""
    now = cur.entries.get(e.name)
    return now if now is not None and (now.kind, now.cap, now.size, now.mtime) == (e.kind, e.cap, e.size, e.mtime) else e


commands = [mkdir, ls, rm, mv, ln, cat, restore]
