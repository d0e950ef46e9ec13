"""Trees of files in and out of folders: ``veil put -r`` and ``veil get -r``.

Upload: the local tree is scanned first (symlinks and special files skipped with a warning,
names checked and normalised to NFC, a pair of names that one file system would merge
refused) so nothing is uploaded for a tree that cannot be stored. Then every file is uploaded,
many at once over the network's shared, pooled connections (small files by the one-shot path:
about one round trip each), bounded in flight: SMALL_PARALLEL small files (GET_PARALLEL on the
way down), LARGE_PARALLEL large ones. Finally every folder of the tree is written once, with all its entries, in
parallel (each a fresh slot; a subfolder's write cap sealed into its parent's entry).

Download: the folder tree is read and planned first (every name mapped with names.local_names:
bad names refused, colliding ones renamed, each with a warning; folder cycles and depth
bounded), then files are downloaded in parallel. A file is only ever written as
``<a directory this download made or was given>/<one checked name component>``, through a
temp file renamed into place, so no listing can make it write outside the target.

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import mimetypes
import os
import random
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from veil.errors import UnavailableError, UsageError
from veil.format.caps import parse_read_cap
from veil.format.folder import FILE, FOLDER, Entry
from veil.format.folder_caps import FolderWriteCap, new_folder
from veil.format.names import MAX_PATH_DEPTH, fold, local_names, name_problem, shown
from veil.format.names import normalise as nfc_name

from .download import DownloadResult, download
from .folders import Snapshot, child_caps, create_folder, folder_entry, read_folder
from .network import Network
from .output import AtomicOutput
from .progress import Progress, nothing
from .upload import SMALL_FILE, UploadResult, upload

SMALL_PARALLEL = 8
GET_PARALLEL = 16
LARGE_PARALLEL = 2
FOLDER_PARALLEL = 8
RETRIES = 4  # a file whose upload or download found too few nodes free is tried again
Warn = Callable[[str], None]
T = TypeVar("T")


def retried(what: Callable[[], T]) -> T:
    """``what()``, tried again after a jittered pause when too few nodes were free (nodes answer
    503 busy when one client address has too many requests in flight; a devnet is all one address)."""
    for attempt in range(RETRIES):
        try:
            return what()
        except UnavailableError:
            if attempt == RETRIES - 1:
                raise
            time.sleep(random.uniform(0.2, 0.5) * 2**attempt)
    raise AssertionError("unreachable")


@dataclass
class LocalDir:
    path: Path
    name: str
    files: list[tuple[str, Path, int, int]] = field(default_factory=list)  # name, path, size, mtime
    dirs: list[LocalDir] = field(default_factory=list)
    wcap: FolderWriteCap = field(default_factory=new_folder)

    def walk(self) -> list[LocalDir]:
        out = [self]
        for d in self.dirs:
            out += d.walk()
        return out


def scan(root: Path, warn: Warn, depth: int = 0) -> LocalDir:
    """The local tree under ``root``; UsageError for a name a folder may not hold."""
    if depth > MAX_PATH_DEPTH:
        raise UsageError(f"{root}: deeper than {MAX_PATH_DEPTH} folders")
    node = LocalDir(root, root.name)
    seen: dict[str, str] = {}
    try:
        items = sorted(os.scandir(root), key=lambda d: d.name)
    except OSError as e:
        raise UsageError(f"cannot read {root}: {e.strerror or e}") from e
    for it in items:
        if it.is_symlink():
            warn(f"skipped {it.path}: a symlink (folders hold no symlinks)")
            continue
        try:
            name = nfc_name(it.name)
        except UsageError as e:
            raise UsageError(f"{it.path}: {e}") from e
        if fold(name) in seen:
            raise UsageError(f"{it.path}: {shown(name)} and {shown(seen[fold(name)])} are one name once "
                             "normalised and case-folded; rename one")  # fmt: skip
        seen[fold(name)] = name
        st = it.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = scan(Path(it.path), warn, depth + 1)
            sub.name = name
            node.dirs.append(sub)
        elif stat.S_ISREG(st.st_mode):
            node.files.append((name, Path(it.path), st.st_size, int(st.st_mtime)))
        else:
            warn(f"skipped {it.path}: not a regular file or folder")
    return node


def _upload_file(net: Network, name: str, path: Path, size: int, mtime: int, progress: Progress,
                 coding: tuple[int, int, int | None]) -> Entry:  # fmt: skip
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"

    def once() -> UploadResult:
        f.seek(0)
        k, n, happy = coding
        return upload(net, f, size, name, mime=mime, progress=progress, mtime=mtime, k=k, n=n, happy=happy)

    with f:
        res = retried(once)
    return Entry(name=name, kind=FILE, cap=res.cap.to_string(), size=size, mtime=mtime, mime=mime)


@dataclass
class TreeStats:
    files: int = 0
    folders: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def put_tree(net: Network, tree: LocalDir, progress: Progress = nothing, k: int = 3, n: int = 10,
             happy: int | None = None) -> tuple[FolderWriteCap, TreeStats]:  # fmt: skip
    """Upload a scanned tree (each file k-of-n); the write cap of its new root folder."""
    coding = (k, n, happy)
    dirs = tree.walk()
    stats = TreeStats(files=sum(len(d.files) for d in dirs), folders=len(dirs))
    stats.bytes = sum(f[2] for d in dirs for f in d.files)
    net.storage_nodes_for(bytes(32))  # join the DHT once, before the workers share it
    lock = threading.Lock()

    def bar(n: int) -> None:
        with lock:
            progress(n)

    entries: dict[int, dict[str, Entry]] = {id(d): {} for d in dirs}
    with ThreadPoolExecutor(SMALL_PARALLEL, thread_name_prefix="put-small") as small, \
            ThreadPoolExecutor(LARGE_PARALLEL, thread_name_prefix="put-large") as large:
        jobs: list[tuple[LocalDir, str, Future[Entry]]] = []
        for d in dirs:
            for name, path, size, mtime in d.files:
                pool = small if size <= SMALL_FILE else large
                jobs.append((d, name, pool.submit(_upload_file, net, name, path, size, mtime, bar, coding)))
        try:
            for d, name, fut in jobs:
                entries[id(d)][name] = fut.result()
        except BaseException:
            for _, _, fut in jobs:
                fut.cancel()
            raise
    for d in dirs:
        for sub in d.dirs:
            entries[id(d)][sub.name] = folder_entry(d.wcap, sub.name, sub.wcap, int(sub.path.stat().st_mtime))
    with ThreadPoolExecutor(FOLDER_PARALLEL, thread_name_prefix="put-folder") as ex:
        for _ in ex.map(lambda d: retried(lambda: create_folder(net, entries[id(d)], d.wcap)), dirs):
            pass
    return tree.wcap, stats


@dataclass
class Plan:
    files: list[tuple[Path, Entry]] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(e.size for _, e in self.files)


def plan_tree(net: Network, snap: Snapshot, dest: Path, force: bool, plan: Plan | None = None,
              path: tuple[bytes, ...] = (), shown_as: str = "") -> Plan:  # fmt: skip
    """What downloading the folder ``snap`` into ``dest`` writes (nothing is written yet)."""
    plan = plan or Plan()
    path = (*path, snap.rcap.slot_id)
    names = sorted(snap.entries)
    for ln in local_names(names):
        where = f"{shown_as}/{ln.name}" if shown_as else ln.name
        if ln.warning:
            plan.warnings.append(f"{shown(shown_as) + ': ' if shown_as else ''}{ln.warning}")
        if ln.local is None or name_problem(ln.local) is not None:
            continue
        target = dest / ln.local
        e = snap.entries[ln.name]
        if e.kind == FILE:
            if os.path.lexists(target) and (os.path.islink(target) or not force):
                raise UsageError(f"{target} exists; use --force to overwrite files (links are never followed)")
            plan.files.append((target, e))
        elif e.kind == FOLDER:
            rc, _ = child_caps((snap.rcap, snap.wcap), e)
            if rc.slot_id in path:
                plan.warnings.append(f"skipped folder {shown(where)}: it contains itself (a cycle)")
                continue
            if len(path) >= MAX_PATH_DEPTH:
                plan.warnings.append(f"skipped folder {shown(where)}: deeper than {MAX_PATH_DEPTH} folders")
                continue
            if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
                raise UsageError(f"{target} exists and is not a folder")
            plan.dirs.append(target)
            plan_tree(net, read_folder(net, rc), target, force, plan, path, where)
    return plan


def get_tree(net: Network, plan: Plan, dest: Path, progress: Progress = nothing) -> list[str]:
    """Carry out a plan: make the folders, download the files in parallel; warnings."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in plan.dirs:
        os.makedirs(d, exist_ok=True)
        if os.path.islink(d):  # swapped for a link since it was planned: never followed
            raise UsageError(f"{d} is a symlink; nothing is written through links")
    lock = threading.Lock()
    warnings = list(plan.warnings)

    def bar(n: int) -> None:
        with lock:
            progress(n)

    def one(job: tuple[Path, Entry]) -> None:
        target, e = job
        if os.path.islink(target.parent) or os.path.islink(target):
            raise UsageError(f"{target}: a symlink appeared on the way; nothing is written through links")

        def once() -> DownloadResult:
            with AtomicOutput(str(target), force=True) as f:
                return download(net, parse_read_cap(e.cap), f, progress=bar)

        res = retried(once)
        if res.manifest.size != e.size:
            with lock:
                warnings.append(f"{target}: the folder said {e.size} bytes, the file has {res.manifest.size}")
        if e.mtime is not None:
            try:
                os.utime(target, (e.mtime, e.mtime))
            except (OSError, OverflowError, ValueError):
                pass

    with ThreadPoolExecutor(GET_PARALLEL, thread_name_prefix="get-small") as small, \
            ThreadPoolExecutor(LARGE_PARALLEL, thread_name_prefix="get-large") as large:
        futs = [(large if e.size > SMALL_FILE else small).submit(one, (t, e)) for t, e in plan.files]
        try:
            for fut in futs:
                fut.result()
        except BaseException:
            for fut in futs:
                fut.cancel()
            raise
    return warnings

