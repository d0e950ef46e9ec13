"""`veil put FILE...` and `veil put -` (standard input): upload files, print caps and a summary.

Standard input is spooled to an unlinked temp file first: the share geometry in the manifest
needs the size before the first segment is coded, and a pipe cannot be asked for it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import click

from veil.client.deletion import deletion_secret
from veil.client.network import Network
from veil.client.upload import UploadResult, upload
from veil.errors import UsageError
from veil.format.deletion import deletion_key
from veil.format.remote_text import clean

from .common import human, link_text, progress_bar
from .jsonout import emit


def check_sources(files: tuple[str, ...], name: str | None) -> None:
    """Refuse a bad list of sources with one line, before any upload starts."""
    if not files:
        raise UsageError("name at least one FILE to upload (or - for standard input)")
    if name is not None and files != ("-",):
        raise UsageError("--name is for `veil put -` (standard input); a file is named after itself")
    if files.count("-") > 1:
        raise UsageError("standard input (-) can be uploaded once per command")
    for f in files:
        if f == "-":
            continue
        p = Path(f)
        if p.is_dir():
            raise UsageError(f"{f} is a directory: use `veil put -r {f}`")
        if not p.is_file():
            raise UsageError(f"{f}: no such file")


def _spool_stdin() -> tuple[BinaryIO, int]:
    tmp = tempfile.TemporaryFile(prefix="veil-stdin-")
    shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
    size = tmp.tell()
    tmp.seek(0)
    return tmp, size


def put_one(net: Network, source: str, name: str | None, quiet: bool, as_json: bool, **kw: Any) -> UploadResult:
    """Upload one file (or standard input for "-"); print its caps (or JSON) and a summary line."""
    if source == "-":
        src, size = _spool_stdin()
        shown, mtime = name or "stdin", None
    else:
        try:
            src = open(source, "rb")
        except OSError as e:
            raise UsageError(f"cannot read {source}: {e.strerror or e}") from e
        st = os.fstat(src.fileno())
        size, shown, mtime = st.st_size, os.path.basename(source), int(st.st_mtime)
    secret = deletion_secret(create=True)
    t0 = time.monotonic()
    try:
        with progress_bar(f"uploading {shown}", size, quiet or as_json) as bar:
            res = upload(net, src, size, shown, progress=bar, mtime=mtime, deletion=secret, **kw)
    finally:
        src.close()
    secs = max(time.monotonic() - t0, 1e-6)
    link = res.cap.link(net.gateway) if net.gateway else None
    nodes = sorted({n.label for n in res.placement.values()})
    if as_json:
        emit({"name": shown, "size": size, "seconds": round(secs, 3), "read_cap": res.cap.to_string(),
              "verify_cap": res.cap.verify_cap().to_string(), "link": link,
              "delete_key": deletion_key(secret, res.manifest.si).hex() if secret else None, "k": res.manifest.k,
              "n": res.manifest.n, "shares": [{"shnum": i, "node": clean(nd.label), "node_id": nd.node_id.hex()}
                                              for i, nd in sorted(res.placement.items())]})  # fmt: skip
        return res
    if quiet:
        click.echo(res.cap.to_string())
        return res
    click.echo(f"read cap:   {res.cap.to_string()}")
    click.echo(f"verify cap: {res.cap.verify_cap().to_string()}")
    click.echo(f"link:       {link_text(link)}")
    where = ", ".join(nodes[:4]) + (f" and {len(nodes) - 4} more" if len(nodes) > 4 else "")
    click.echo(clean(f"{shown}: {human(size)} in {secs:.1f} s ({human(size / secs)}/s); {len(res.placement)} "
                     f"shares ({res.manifest.k} needed) on {len(nodes)} nodes: {where}", 400), err=True)  # fmt: skip
    return res
