"""`veil bench folders`: trees of files up and down through a fresh devnet, through the same
client code as `veil put -r` / `veil get -r` (veil.client.folder_tree), beside the same bytes as
one file with `veil put` / `veil get` (veil.client.upload / download) in the same run.

Two trees: ``--files`` files of ``--small-kib`` KiB (in folders of ``--per-folder``), and
``--large-files`` files of ``--large-mib`` MiB. Each tree is uploaded, then downloaded into an
empty directory and compared byte for byte with the source (a mismatch is an error, not a
figure). The large tree's MB/s up and down are divided by those of one file holding all its
bytes: the ratio the issue's target is stated in (>= 0.9). Targets for the small tree:
>= 150 files/s up and >= 300 files/s down on the 2-core machine.

The pure parts (rates, ratios, option checks) have no I/O and are unit-tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from veil.client.download import download
from veil.client.folder_tree import get_tree, plan_tree, put_tree, scan
from veil.client.folders import read_folder
from veil.client.network import Network, load_network
from veil.client.upload import upload
from veil.devnet.manager import Devnet
from veil.errors import IntegrityError, UsageError

KiB, MiB = 1024, 1024 * 1024
TARGETS = {"small_up_files_per_s": 150.0, "small_down_files_per_s": 300.0, "large_ratio": 0.9}


# -- pure parts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    files: int
    nbytes: int
    seconds: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, float]:
        return {"files": self.files, "bytes": self.nbytes, "seconds": self.seconds,
                "files_per_s": self.files_per_s, "mb_per_s": self.mb_per_s}  # fmt: skip


def ratio(tree: Rate, single: Rate) -> float:
    """The tree's MB/s as a fraction of one file's holding the same bytes."""
    return tree.mb_per_s / single.mb_per_s if single.mb_per_s > 0 else 0.0


def check_options(files: int, small_kib: int, per_folder: int, large_files: int, large_mib: int, nodes: int) -> None:
    if files < 0 or large_files < 0 or files + large_files == 0:
        raise UsageError("--files and --large-files must be >= 0, and not both 0")
    if not 1 <= small_kib <= 4096 or not 1 <= large_mib <= 1024:
        raise UsageError("--small-kib must be 1..4096 and --large-mib 1..1024")
    if not 1 <= per_folder <= 100_000 or nodes < 1:
        raise UsageError("--per-folder must be 1..100000 and --nodes at least 1")


# -- the run ------------------------------------------------------------------------------


def _write_tree(root: Path, files: int, size: int, per_folder: int) -> None:
    for i in range(files):
        d = root / f"folder-{i // per_folder:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file-{i:05d}.bin").write_bytes(os.urandom(size))


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath, n)
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _tree_phase(net: Network, src: Path, out: Path, echo: Callable[[str], None], label: str) -> tuple[Rate, Rate]:
    tree = scan(src, echo)
    t0 = time.monotonic()
    wcap, stats = put_tree(net, tree)
    up = Rate(stats.files, stats.bytes, time.monotonic() - t0)
    echo(f"{label}: put -r {up.files_per_s:8.1f} files/s {up.mb_per_s:7.1f} MB/s ({up.seconds:.1f} s)")
    t0 = time.monotonic()
    plan = plan_tree(net, read_folder(net, wcap.read_cap()), out, force=False)
    get_tree(net, plan, out)
    down = Rate(len(plan.files), plan.bytes, time.monotonic() - t0)
    echo(f"{label}: get -r {down.files_per_s:8.1f} files/s {down.mb_per_s:7.1f} MB/s ({down.seconds:.1f} s)")
    if _digest(out) != _digest(src):
        raise IntegrityError(f"{label}: the downloaded tree differs from the uploaded one")
    return up, down


def _single_phase(net: Network, nbytes: int, work: Path, echo: Callable[[str], None]) -> tuple[Rate, Rate]:
    src = work / "single.bin"
    with open(src, "wb") as f:
        left = nbytes
        while left:
            chunk = min(left, 8 * MiB)
            f.write(os.urandom(chunk))
            left -= chunk
    t0 = time.monotonic()
    with open(src, "rb") as f:
        res = upload(net, f, nbytes, "single.bin")
    up = Rate(1, nbytes, time.monotonic() - t0)
    t0 = time.monotonic()
    out = work / "single.out"
    with open(out, "wb") as f:
        download(net, res.cap, f)
    down = Rate(1, nbytes, time.monotonic() - t0)
    echo(f"one file of the same bytes: put {up.mb_per_s:7.1f} MB/s, get {down.mb_per_s:7.1f} MB/s")
    if os.path.getsize(out) != nbytes:
        raise IntegrityError("the single file came back with another size")
    src.unlink()
    out.unlink()
    return up, down


def run(files: int, small_kib: int, per_folder: int, large_files: int, large_mib: int, nodes: int,
        echo: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="veil-bench-folders-") as t:
        root = Path(t)
        d = Devnet(root / "devnet")
        echo(f"starting a {nodes}-node devnet ...")
        d.up(nodes, ["storage"], [])
        net = load_network(d.network_path)
        result: dict[str, Any] = {"nodes": nodes, "targets": TARGETS}
        try:
            if files:
                _write_tree(root / "small", files, small_kib * KiB, per_folder)
                up, down = _tree_phase(net, root / "small", root / "small.out", echo, f"{files} x {small_kib} KiB")
                result["small"] = {"files": files, "kib": small_kib, "up": up.to_json(), "down": down.to_json()}
            if large_files:
                _write_tree(root / "large", large_files, large_mib * MiB, per_folder)
                up, down = _tree_phase(net, root / "large", root / "large.out", echo,
                                       f"{large_files} x {large_mib} MiB")  # fmt: skip
                sup, sdown = _single_phase(net, large_files * large_mib * MiB, root, echo)
                result["large"] = {"files": large_files, "mib": large_mib, "up": up.to_json(), "down": down.to_json(),
                                   "single_up": sup.to_json(), "single_down": sdown.to_json(),
                                   "ratio_up": ratio(up, sup), "ratio_down": ratio(down, sdown)}  # fmt: skip
        finally:
            net.close()
            d.down()
        return result


def report(r: dict[str, Any]) -> None:
    t = r["targets"]
    click.echo(f"veil bench folders: {r['nodes']} storage nodes on 127.0.0.1 (clients find them through the DHT)")
    if "small" in r:
        s = r["small"]
        click.echo(f"small tree, {s['files']} x {s['kib']} KiB: up {s['up']['files_per_s']:.1f} files/s "
                   f"({s['up']['mb_per_s']:.1f} MB/s), down {s['down']['files_per_s']:.1f} files/s "
                   f"({s['down']['mb_per_s']:.1f} MB/s); targets >= {t['small_up_files_per_s']:g} up, "
                   f">= {t['small_down_files_per_s']:g} down")  # fmt: skip
    if "large" in r:
        g = r["large"]
        click.echo(f"large tree, {g['files']} x {g['mib']} MiB: up {g['up']['mb_per_s']:.1f} MB/s, "
                   f"down {g['down']['mb_per_s']:.1f} MB/s; one file of the same bytes: up "
                   f"{g['single_up']['mb_per_s']:.1f} MB/s, down {g['single_down']['mb_per_s']:.1f} MB/s")  # fmt: skip
        click.echo(f"ratio tree / one file: up {g['ratio_up']:.2f}, down {g['ratio_down']:.2f} "
                   f"(target >= {t['large_ratio']:g})")  # fmt: skip


@click.command("folders")
@click.option("--files", default=2000, show_default=True, help="Files in the small-file tree (0: skip it).")
@click.option("--small-kib", default=64, show_default=True, help="Size of each small file, KiB.")
@click.option("--per-folder", default=250, show_default=True, help="Files per folder in the trees.")
@click.option("--large-files", default=20, show_default=True, help="Files in the large-file tree (0: skip it).")
@click.option("--large-mib", default=10, show_default=True, help="Size of each large file, MiB.")
@click.option("--nodes", default=10, show_default=True, help="Storage nodes in the fresh devnet.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
def folders_cmd(files: int, small_kib: int, per_folder: int, large_files: int, large_mib: int, nodes: int,
                as_json: bool) -> None:  # fmt: skip
    """Upload and download trees of files through a fresh devnet (put -r / get -r); files/s, MB/s,
    and the large tree against one file of the same bytes."""
    check_options(files, small_kib, per_folder, large_files, large_mib, nodes)

    def echo(line: str) -> None:
        click.echo(line, err=True)

    r = run(files, small_kib, per_folder, large_files, large_mib, nodes, echo)
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        report(r)
