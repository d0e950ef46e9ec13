"""`veil bench store`: durable one-shot share writes on this disk, against the disk's own ceiling.

The ceiling is the rate of the cheapest durable write the store could make: one small file
fsynced plus one directory fsync, serially. The store then takes one-shot shares (share file
and manifest fsynced, renames made durable by the group committer) from 1, 8 and 32 threads;
the ratio to the ceiling and the installs per durable batch show what group commit buys.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import click

from veil.durable import fsync_dir
from veil.storage.store import ShareStore
from veil.testing.shares import FakeShare, fake_file


def _ceiling(d: Path, n: int) -> float:
    d.mkdir()
    t0 = time.perf_counter()
    for i in range(n):
        fd = os.open(d / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        os.close(fd)
        fsync_dir(d)
    return n / (time.perf_counter() - t0)


def _round(store: ShareStore, shares: list[FakeShare], bodies: list[bytes], threads: int) -> dict[str, float]:
    b0, i0 = store.committer.batches, store.committer.installs

    def work(part: list[int]) -> None:
        for i in part:
            store.put_oneshot(shares[i].si, shares[i].shnum, bodies[i])

    idx = list(range(len(shares)))
    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(idx[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    for sh in shares:
        store.delete_share(sh.si, sh.mhash, sh.shnum)
    return {"per_s": len(shares) / dt,
            "installs_per_batch": (store.committer.installs - i0) / max(1, store.committer.batches - b0)}


@click.command("store")
@click.option("--shares", "n", default=400, show_default=True, help="One-shot shares per round.")
@click.option("--dir", "where", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory on the disk to measure (default: the system temp dir).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def store_cmd(n: int, where: Path | None, as_json: bool) -> None:
    """Durable one-shot share writes/s from 1, 8 and 32 threads, against fsync'd file+dir writes/s."""
    with tempfile.TemporaryDirectory(prefix="veil-bench-store-", dir=where) as d:
        tmp = Path(d)
        res: dict[str, dict[str, float]] = {"ceiling": {"per_s": _ceiling(tmp / "ceiling", n)}}
        store = ShareStore(tmp / "store", reap_interval=0)
        shares = [fake_file(os.urandom(16), nseg=2, seed=i)[0] for i in range(n)]
        bodies = [sh.oneshot() for sh in shares]
        for threads in (1, 8, 32):
            r = res[f"threads_{threads}"] = _round(store, shares, bodies, threads)
            r["ratio_to_ceiling"] = r["per_s"] / res["ceiling"]["per_s"]
        store.close()
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
        return
    click.echo(f"ceiling (fsync'd 4 KiB file + dir fsync, serial): {res['ceiling']['per_s']:8,.0f}/s")
    for threads in (1, 8, 32):
        r = res[f"threads_{threads}"]
        click.echo(f"one-shot shares, {threads:2d} threads: {r['per_s']:8,.0f}/s  "
                   f"ratio {r['ratio_to_ceiling']:.2f}  installs per durable batch {r['installs_per_batch']:.1f}")
