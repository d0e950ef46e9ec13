"""The recursive forms of `veil put`, `veil get`, `veil check` and `veil repair` (folders);
files.py's commands call these when given -r."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from veil.client.aliases import parse_folder_path
from veil.client.folder_health import Health, walk_health
from veil.client.folder_tree import Plan, get_tree, plan_tree, put_tree, scan
from veil.client.folders import add_entry, child_caps, folder_at, folder_entry, read_folder, walk, writable
from veil.errors import UsageError, VeilError
from veil.format.folder import FOLDER
from veil.format.folder_caps import verify_cap_of
from veil.format.names import local_names, normalise
from veil.format.remote_text import clean

from .common import human, link_text, open_network, progress_bar
from .jsonout import emit
from .signer import ticket_signer


def _warn(lines: list[str]) -> None:
    for w in lines:
        click.echo(f"veil: warning: {clean(w)}", err=True)


def put_r(src: Path, to: str | None, quiet: bool, network_path: Path | None, k: int = 3, n: int = 10,
          happy: int | None = None, wallet: Path | None = None) -> None:  # fmt: skip
    if not src.is_dir():
        raise UsageError(f"{src}: not a directory (put -r uploads a directory tree)")
    warnings: list[str] = []
    tree = scan(src, warnings.append)
    dest = None
    if to is not None:  # checked before anything is uploaded
        fp = parse_folder_path(to)
        name = normalise(fp.parts[-1]) if fp.parts else normalise(tree.name or "folder")
        parents = fp.parts[:-1] if fp.parts else []
    net = open_network(network_path)
    net.tickets = ticket_signer(wallet, net)  # nodes that admit storage by ticket: the wallet, if asked
    if to is not None:
        dest = folder_at(net, fp.cap, parents)
        writable(dest)
        if dest.get(name) is not None:
            raise UsageError(f"{name!r} already exists in the destination folder")
    _warn(warnings)
    total = sum(f[2] for d in tree.walk() for f in d.files)
    with progress_bar(f"uploading {src.name or src}", total, quiet) as bar:
        wcap, stats = put_tree(net, tree, progress=bar, k=k, n=n, happy=happy)
    if dest is not None:
        add_entry(net, dest, folder_entry(writable(dest), name, wcap))
    if not quiet:
        click.echo(f"uploaded {stats.files} files, {stats.folders} folders, {human(stats.bytes)}"
                   + (f" as {clean(to, 200)}" if to is not None else ""), err=True)  # fmt: skip
    if quiet:
        click.echo(wcap.to_string())
        return
    click.echo(f"write cap:  {wcap.to_string()}")
    click.echo(f"read cap:   {wcap.read_cap().to_string()}")
    click.echo(f"verify cap: {wcap.verify_cap().to_string()}")
    click.echo(f"link:       {link_text(wcap.read_cap().link(net.gateway) if net.gateway else None)}")
    if net.gateway:
        click.echo(f"write link: {wcap.write_link(net.gateway)}  (secret, as the write cap: lets a browser add files)")


def get_r(folder: str, output: str | None, force: bool, quiet: bool, seq: int | None,
          network_path: Path | None) -> None:  # fmt: skip
    fp = parse_folder_path(folder)
    if output is None or output == "-":
        raise UsageError("get -r needs -o DIR: the directory to download into")
    dest = Path(output)
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a directory")
    net = open_network(network_path)
    snap, e = walk(net, fp.cap, fp.parts, seq)
    plan = Plan()
    if e is None:
        plan_tree(net, snap, dest, force, plan)
    elif e.kind == FOLDER:
        rc, wc = child_caps(snap, e)
        plan_tree(net, read_folder(net, wc or rc), dest, force, plan)
    else:
        ln = local_names([e.name])[0]
        if ln.local is None:
            raise UsageError(ln.warning or "refused entry name")
        target = dest / ln.local
        if target.exists() and not force:
            raise UsageError(f"{target} exists; use --force to overwrite files")
        plan.files.append((target, e))
    with progress_bar("downloading", plan.bytes, quiet) as bar:
        warnings = get_tree(net, plan, dest, progress=bar)
    _warn(warnings)
    if not quiet:
        click.echo(f"{dest}: {len(plan.files)} files in {len(plan.dirs)} folders, {human(plan.bytes)} "
                   "verified and decrypted", err=True)  # fmt: skip
    refused = sum(1 for w in warnings if "refused entry" in w or "skipped folder" in w)
    if refused:
        raise VeilError(f"{refused} entries were refused or skipped (warnings above); everything else was downloaded")


def health_r(cap: str, fix: bool, full: bool, as_json: bool, network_path: Path | None) -> None:
    fp = parse_folder_path(cap)
    net = open_network(network_path)
    vcap = verify_cap_of(fp.cap)
    if fp.parts:
        snap = folder_at(net, fp.cap, fp.parts)
        vcap = snap.rcap.verify_cap()
    items: list[Health] = []

    def report(h: Health) -> None:
        items.append(h)
        if as_json:
            return
        state = "ok" if h.ok else (f"PROBLEM: {h.problem}" if h.problem else "not healthy")
        what = "nodes" if h.kind == "folder" else "shares"
        change = f"{h.before} -> {h.healthy}" if fix and h.before != h.healthy else f"{h.healthy}"
        gone = f" ({h.unreachable} unreachable)" if h.unreachable else ""
        click.echo(clean(f"{h.kind:<6} {h.cap[:30]}…  {change} of {h.total} {what}{gone}  {state}"))

    walk_health(net, vcap, report, fix=fix, full=full)
    bad = [h for h in items if not h.ok]
    if as_json:
        emit({"repaired" if fix else "checked": [h.__dict__ | {"ok": h.ok} for h in items], "not_healthy": len(bad)})
    else:
        kinds = {k: sum(1 for h in items if h.kind == k) for k in ("folder", "page", "file")}
        click.echo(f"{'repaired' if fix else 'checked'}: {kinds['folder']} folders, {kinds['page']} pages, "
                   f"{kinds['file']} files; not healthy: {len(bad)}")  # fmt: skip
    if bad:
        sys.exit(1)

