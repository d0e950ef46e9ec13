"""``veil check -r`` / ``veil repair -r``: keep a folder and everything under it healthy with
only its verify cap, never reading a name or a key.

The walk: the folder's slot (how many of its n nodes hold the current version; repair puts it
on the others), then its sealed index (format/folder_seal.py: the children's verify caps, or a
paged folder's page read caps). A file child is checked (or repaired) as ``veil check`` does;
a folder child is walked in turn; a page is an immutable file: it is checked (or repaired)
itself, then opened with the folder's verify cap for the children it indexes. Folders already
seen are skipped, so a cycle ends.

Imports from: veil.errors, veil.format, veil.client.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from veil.errors import VeilError
from veil.format.caps import VerifyCap, parse_read_cap, parse_verify_cap
from veil.format.folder_caps import FolderVerifyCap, parse_folder_cap
from veil.format.folder_seal import PAGE, ROOT, open_index

from . import check as check_mod
from . import repair as repair_mod
from .folder_body import fetch_file_bytes
from .mutable_io import census, heal_slot, slot_nodes
from .network import Network


@dataclass
class Health:
    kind: str  # "folder", "page" or "file"
    cap: str  # the verify cap checked
    healthy: int  # nodes (folder) or shares (file, page) holding it intact afterwards
    total: int
    before: int
    problem: str = ""
    unreachable: int = 0  # a folder's nodes that did not answer (they cannot be healed)
    need: int = 0  # a folder is healthy when every reachable node holds it and at least this many

    @property
    def ok(self) -> bool:
        return (not self.problem and self.healthy + self.unreachable >= self.total
                and self.healthy >= (self.need or self.total))


Report = Callable[[Health], None]


def _file(net: Network, kind: str, vc: VerifyCap, fix: bool, full: bool) -> Health:
    cap = vc.to_string()
    try:
        rep = check_mod.check(net, vc, full=full)
        before = len(rep.healthy_shares)
        after = before
        if fix and not rep.healthy:
            after = repair_mod.repair(net, vc, full=full, report=rep).healthy_after
        return Health(kind, cap, after, rep.manifest.n, before)
    except VeilError as e:
        return Health(kind, cap, 0, 0, 0, str(e))


def walk_health(net: Network, vcap: FolderVerifyCap, report: Report, fix: bool = False, full: bool = False,
                seen: set[bytes] | None = None) -> None:  # fmt: skip
    """Check (``fix``: repair) the folder ``vcap`` and its subtree, reporting every item."""
    seen = seen if seen is not None else set()
    if vcap.slot_id in seen:
        return
    seen.add(vcap.slot_id)
    sn = slot_nodes(net, vcap.slot_id)
    got = census(net, sn)
    rec = got.latest.record
    if rec is None:
        report(Health("folder", vcap.to_string(), 0, sn.n, 0, "no node holds a valid version of this folder"))
        return
    before = len(got.latest.holders)
    gone = sn.n - len(got.held)
    after = heal_slot(net, sn, got) if fix and before + gone < sn.n else before
    report(Health("folder", vcap.to_string(), after, sn.n, before, unreachable=gone, need=sn.happy))
    try:
        index = open_index(vcap, rec.seq, rec.payload, ROOT)
    except VeilError as e:
        report(Health("folder", vcap.to_string(), 0, sn.n, before, f"cannot open its index: {e}"))
        return
    _children(net, vcap, index, report, fix, full, seen)


def _children(net: Network, vcap: FolderVerifyCap, index: list[str], report: Report, fix: bool, full: bool,
              seen: set[bytes]) -> None:  # fmt: skip
    files = [c for c in index if c.startswith("veil:v1:")]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="check-r") as ex:
        for h in ex.map(lambda c: _file(net, "file", parse_verify_cap(c), fix, full), files):
            report(h)
    for c in index:
        if c.startswith("veil:fv1:"):
            child = parse_folder_cap(c)
            assert isinstance(child, FolderVerifyCap)
            walk_health(net, child, report, fix, full, seen)
        elif c.startswith("veil:r1:"):
            rc = parse_read_cap(c)
            h = _file(net, "page", rc.verify_cap(), fix, full)
            report(h)
            try:
                sub = open_index(vcap, 0, fetch_file_bytes(net, c), PAGE)
            except VeilError as e:
                report(Health("page", h.cap, 0, h.total, h.before, f"cannot open the page: {e}"))
                continue
            _children(net, vcap, sub, report, fix, full, seen)
