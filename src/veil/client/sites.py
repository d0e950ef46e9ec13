"""Sites: a folder published under a name (``veil site publish``) and read back page by page for
the local proxy and the gateway's ``/n/`` route (docs/specs/sites.md).

Publishing uploads the directory as ``veil put -r`` does, then makes the site's one long-lived
folder hold exactly the new tree's top-level entries (one compare-and-swap edit), so the name's
``site`` record (the folder's read cap) never has to change. The folder's write cap is kept as
the alias ``site.NAME`` in ``$VEIL_HOME/aliases.json`` (mode 0600).

Reading: ``SiteReader.page(host, path)`` maps ``alice.veil`` / ``blog.alice.veil`` to the
checked ``site`` record (cached for ``CAP_TTL`` seconds), walks the path, serves ``index.html``
for a folder, the site's ``404.html`` (or a plain 404) for a miss, and byte ranges (206/416).

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

import io
import mimetypes
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veil.errors import NotFoundError, UsageError
from veil.format.caps import parse_read_cap
from veil.format.folder import FILE, FOLDER, Entry
from veil.format.folder_caps import FolderCap, FolderWriteCap, parse_folder_cap
from veil.format.folder_ops import diff_ops
from veil.format.names import normalise

from .aliases import add_alias, load_aliases
from .download import download
from .folder_tree import LocalDir, TreeStats, put_tree, scan
from .folders import Snapshot, child_caps, edit_folder, folder_entry, read_folder
from .names import NameClient
from .network import Network
from .progress import Progress, nothing

CAP_TTL = 10.0  # seconds a name's site record is reused before it is resolved (and checked) again
MAX_PAGE = 64 * 1024 * 1024  # largest body served in one response (a bigger file: ranges)
SUFFIX = ".veil"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def site_alias(name: str) -> str:
    return f"site.{name}"


@dataclass
class Published:
    wcap: FolderWriteCap
    stats: TreeStats
    created: bool  # a new site folder (the name's record must point at it)


def publish(net: Network, src: Path, name: str, warn: Callable[[str], None], progress: Progress = nothing,
            k: int = 3, n: int = 10, happy: int | None = None) -> Published:  # fmt: skip
    """Upload ``src`` and make the site folder of ``name`` hold it (a new folder the first time)."""
    if not src.is_dir():
        raise UsageError(f"{src}: not a directory (a site is published from a directory)")
    tree = scan(src, warn)
    kept = load_aliases().get(site_alias(name))
    wcap, stats = put_tree(net, tree, progress=progress, k=k, n=n, happy=happy)
    if kept is None:
        add_alias(site_alias(name), wcap.to_string())
        return Published(wcap, stats, True)
    site = parse_folder_cap(kept)
    if not isinstance(site, FolderWriteCap):
        raise UsageError(f"alias {site_alias(name)} holds a read cap; the site's write cap is needed to update it")
    snap = read_folder(net, site)
    new = _entries_for(net, tree, site)
    ops = diff_ops(snap.entries, new)
    if ops:
        edit_folder(net, snap, ops)
    return Published(site, stats, False)


def _entries_for(net: Network, tree: LocalDir, parent: FolderWriteCap) -> dict[str, Entry]:
    """The new tree's top-level entries, its subfolders' write caps sealed for ``parent``."""
    fresh = read_folder(net, tree.wcap).entries
    out = {k: e for k, e in fresh.items() if e.kind == FILE}
    for sub in tree.dirs:
        out[sub.name] = folder_entry(parent, sub.name, sub.wcap, int(sub.path.stat().st_mtime))
    return out


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # the body's length when ``body`` was left out (a HEAD request)


def site_name(host: str) -> str | None:
    """``alice.veil[:port]`` -> ``alice.veil``; None for a host outside ``.veil``."""
    h = host.strip().lower()
    if h.startswith("["):
        return None
    h = h.rsplit(":", 1)[0] if ":" in h else h
    h = h.rstrip(".")
    return h if h.endswith(SUFFIX) and len(h) > len(SUFFIX) else None


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A ``Range: bytes=a-b`` header as [start, end) within ``size``; None for no (or an ignored,
    multi-range) header; UsageError when unsatisfiable (answered 416)."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None  # multiple ranges or another unit: RFC 9110 lets a server ignore Range
    a, b = m.groups()
    if not a and not b:
        return None
    if not a:
        start, end = max(0, size - int(b)), size
    else:
        start = int(a)
        end = min(size, int(b) + 1) if b else size
    if start >= size or start >= end:
        raise UsageError(f"range {header.strip()} is outside the file ({size} bytes)")
    return start, end


class SiteReader:
    """Pages of sites by host name; ``net`` a callable so a network file may be re-read."""

    def __init__(self, names: NameClient, net: Callable[[], Network], clock: Callable[[], float] = time.monotonic) -> None:
        self.names = names
        self._net = net
        self._clock = clock
        self._lock = threading.Lock()
        self._caps: dict[str, tuple[float, FolderCap]] = {}

    def root(self, name: str) -> FolderCap:
        now = self._clock()
        with self._lock:
            hit = self._caps.get(name)
            if hit is not None and now - hit[0] < CAP_TTL:
                return hit[1]
        with self._lock:  # one lookup at a time (NameClient keeps a floor file and a header cache)
            res = self.names.active(name)
        site = res.get("site")
        if not isinstance(site, str):
            raise NotFoundError(f"{res.name}.veil has no site record")
        cap = parse_folder_cap(site)
        with self._lock:
            self._caps[name] = (now, cap)
        return cap

    def _find(self, net: Network, snap: Snapshot, parts: list[str]) -> Entry | Snapshot | None:
        for i, part in enumerate(parts):
            try:
                e = snap.get(normalise(part))
            except UsageError:
                return None
            if e is None:
                return None
            if e.kind == FOLDER:
                rc, wc = child_caps(snap, e)
                snap = read_folder(net, wc or rc)
            elif i == len(parts) - 1:
                return e
            else:
                return None
        return snap

    def page(self, host: str, path: str, range_header: str | None = None, head: bool = False,
             prefix: str = "") -> Page:  # fmt: skip
        """The answer for ``path`` (percent-decoded, ``/``-separated) of the site at ``host``.
        ``prefix`` is where the site is mounted (``/n/alice.veil`` on the gateway) for redirects."""
        name = site_name(host)
        if name is None:
            raise UsageError(f"{host} is not a .veil name")
        net = self._net()
        root = read_folder(net, self.root(name))
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return self._missing(net, root)
        found = self._find(net, root, parts)
        if isinstance(found, Snapshot):
            if not path.endswith("/"):  # relative links in index.html resolve against the folder
                return Page(301, b"", headers={"Location": "/".join([prefix, *parts]) + "/"})
            idx = found.get("index.html")
            if idx is None or idx.kind != FILE:
                return self._missing(net, root)
            found = idx
        if found is None:
            return self._missing(net, root)
        return self._file(net, found, range_header, head)

    def _file(self, net: Network, e: Entry, range_header: str | None, head: bool, status: int = 200) -> Page:
        ctype = e.mime or mimetypes.guess_type(e.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") and "charset" not in ctype:
            ctype += "; charset=utf-8"
        size = e.size
        hdrs = {"Accept-Ranges": "bytes"}
        try:
            rng = parse_range(range_header, size) if status == 200 else None
        except UsageError:
            return Page(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
        start, end = rng or (0, size)
        if end - start > MAX_PAGE:
            return Page(416 if rng else 413, b"range too large; ask for less\n", "text/plain",
                        {"Content-Range": f"bytes */{size}"})  # fmt: skip
        if rng is not None:
            status = 206
            hdrs["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        body = b""
        if not head and end > start:
            buf = io.BytesIO()
            download(net, parse_read_cap(e.cap), buf, (start, end))
            body = buf.getvalue()
        return Page(status, body, ctype, hdrs, end - start)

    def _missing(self, net: Network, root: Snapshot) -> Page:
        e = root.get("404.html")
        if e is not None and e.kind == FILE:
            return self._file(net, e, None, False, status=404)
        return Page(404, b"<!doctype html><title>Not found</title><h1>404 Not found</h1>"
                         b"<p>This site has no such page.</p>\n")  # fmt: skip
