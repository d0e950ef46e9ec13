"""The data path end to end over the in-memory grid (veil.testing.grid): upload, download,
locate, check and repair through the one transport seam, with dead, stalled and corrupting
nodes, and no processes."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from veil.client.check import check
from veil.client.download import download
from veil.client.quick import QUICK_ASK
from veil.client.repair import repair
from veil.client.upload import SMALL_FILE, upload
from veil.errors import UnavailableError
from veil.testing.grid import Grid


@pytest.fixture
def grid(tmp_path: Path) -> Iterator[Grid]:
    g = Grid(tmp_path, 10)
    yield g
    g.close()


def _put(grid: Grid, data: bytes, **kw: object) -> tuple[object, object]:
    net = grid.network()
    res = upload(net, io.BytesIO(data), len(data), "f.bin", **kw)  # type: ignore[arg-type]
    return net, res


def _get(grid: Grid, cap: object, **kw: object) -> tuple[bytes, list[str]]:
    out = io.BytesIO()
    r = download(grid.network(), cap, out, **kw)  # type: ignore[arg-type]
    return out.getvalue(), r.warnings


def test_small_file_is_one_request_per_share_and_downloads_without_locate(grid: Grid) -> None:
    data = os.urandom(64 * 1024)
    _, res = _put(grid, data)
    assert grid.requests("oneshot") == 10 and grid.requests() == 10  # no begin/commit/manifest round trips
    assert sorted(res.placement) == list(range(10))  # type: ignore[attr-defined]
    grid.reset_counts()
    got, warnings = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data and not warnings
    assert grid.requests("list") == 0 and grid.requests("read") <= QUICK_ASK


def test_large_file_streams_and_commits_with_the_manifest(grid: Grid) -> None:
    data = os.urandom(SMALL_FILE + 300_000)
    _, res = _put(grid, data, segment_size=256 * 1024)
    assert grid.requests("commit") == 10 and grid.requests("oneshot") == 0
    got, _ = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data
    part, _ = _get(grid, res.cap, byte_range=(1_000_000, 1_300_001))  # type: ignore[attr-defined]
    assert part == data[1_000_000:1_300_001]


@pytest.mark.parametrize("size", [5000, 700_000])
def test_download_survives_n_minus_k_dead_nodes_and_names_them(grid: Grid, size: int) -> None:
    data = os.urandom(size)
    _, res = _put(grid, data, segment_size=64 * 1024)
    for i in range(7):
        grid.nodes[i].dead = True
    got, warnings = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data
    assert any(n.label in w for w in warnings for n in grid.nodes[:7])  # the dead nodes it asked are named


def test_corrupting_node_is_dropped_and_named(grid: Grid) -> None:
    data = os.urandom(900_000)
    _, res = _put(grid, data, segment_size=64 * 1024)
    bad = grid.node(res.placement[0])  # type: ignore[attr-defined]
    bad.corrupt = True  # a data share: asked first
    got, warnings = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data
    assert any(bad.label in w and "corrupt" in w for w in warnings)


def test_lagging_sources_are_hedged_not_waited_for(grid: Grid) -> None:
    data = os.urandom(SMALL_FILE + 100_000)
    _, res = _put(grid, data, segment_size=128 * 1024)
    man = res.manifest  # type: ignore[attr-defined]
    holders = {s: n for s, n in res.placement.items()}  # type: ignore[attr-defined]
    for s in range(man.k + 1):  # two of the k+1 first sources hang on every read (list answers)
        if s != 1:
            grid.node(holders[s]).stall_reads = 3600
    got, warnings = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data
    assert any("hedged" in w and grid.node(holders[0]).label in w for w in warnings)


def test_too_few_shares_is_one_clear_error(grid: Grid) -> None:
    data = os.urandom(300_000)
    _, res = _put(grid, data, segment_size=64 * 1024)
    for n in grid.nodes[:8]:
        n.dead = True
    with pytest.raises(UnavailableError, match=r"unreachable|shares needed"):
        _get(grid, res.cap)  # type: ignore[attr-defined]


def test_check_and_repair_bring_a_damaged_file_back(grid: Grid) -> None:
    data = os.urandom(SMALL_FILE + 1)
    _, res = _put(grid, data, segment_size=256 * 1024)
    vcap = res.cap.verify_cap()  # type: ignore[attr-defined]
    assert check(grid.network(), vcap).healthy
    holders = res.placement  # type: ignore[attr-defined]
    for s in (0, 1, 2):
        grid.wipe(grid.node(holders[s]))
    grid.node(holders[3]).corrupt = True
    rep = check(grid.network(), vcap)
    assert rep.missing == [0, 1, 2, 3] and [s.shnum for s in rep.corrupt] == [3]
    fixed = repair(grid.network(), vcap)
    assert sorted(fixed.placed) == [0, 1, 2, 3] and fixed.healthy_after == 10
    grid.node(holders[3]).corrupt = False
    assert check(grid.network(), vcap).healthy
    for s in range(4, 10):  # only the repaired shares (and one more) are left
        if s != 4:
            grid.node(holders[s]).dead = True
    got, _ = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data


def test_upload_replaces_refusing_nodes_and_needs_happy(grid: Grid) -> None:
    grid.nodes[0].full = True
    grid.nodes[1].dead = True
    data = os.urandom(10_000)
    _, res = _put(grid, data)
    assert len(res.placement) == 10  # type: ignore[attr-defined]
    assert grid.nodes[0].info not in res.placement.values()  # type: ignore[attr-defined]
    for n in grid.nodes[:4]:
        n.dead = True
    with pytest.raises(UnavailableError, match="distinct nodes"):
        _put(grid, data)


class CountingPayer:
    """Stands in for the payer's accounting only: pays (counts) every range it is asked to fetch."""

    def __init__(self) -> None:
        self.paid = 0
        self.stopped = None

    def fetch(self, send, node, nbytes, uploader):  # type: ignore[no-untyped-def]
        self.paid += nbytes
        return send({})


def _fetch_all(grid: Grid, res: object, payer: object | None) -> object:
    from veil.client.download import Fetcher
    from veil.client.locate import locate

    net = grid.network()
    man = res.manifest  # type: ignore[attr-defined]
    loc = locate(net, man.si, man.hash())
    f = Fetcher(net, man.si, loc, [], payer)  # type: ignore[arg-type]
    assert b"".join(ct for _, ct in f.segments(0, man.nseg - 1))
    return f


def test_paid_downloads_pay_only_for_what_is_used_when_nodes_keep_up(grid: Grid) -> None:
    data = os.urandom(SMALL_FILE + 500_000)
    _, res = _put(grid, data, segment_size=128 * 1024)
    free = _fetch_all(grid, res, None)
    assert free.requested_bytes > free.used_bytes  # type: ignore[attr-defined]  # k+1 race: the tail is fetched
    payer = CountingPayer()
    paid = _fetch_all(grid, res, payer)
    assert payer.paid == paid.requested_bytes == paid.used_bytes  # type: ignore[attr-defined]


def test_paid_download_with_a_lagging_source_pays_one_hedge_per_lagging_batch(grid: Grid) -> None:
    data = os.urandom(SMALL_FILE + 500_000)
    _, res = _put(grid, data, segment_size=128 * 1024)
    grid.node(res.placement[0]).stall_reads = 3600  # type: ignore[attr-defined]
    payer = CountingPayer()
    f = _fetch_all(grid, res, payer)
    extra = payer.paid - f.used_bytes  # type: ignore[attr-defined]
    # the stalled source was paid for the batches it was handed before it was seen to lag, no more
    assert f.hedged >= 1 and 0 < extra <= 3 * 2 * (2 << 20)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [20_000, SMALL_FILE + 1])
def test_n_minus_k_stalled_nodes_do_not_hold_a_download(grid: Grid, size: int) -> None:
    """Seven of ten nodes hang on every request (as SIGSTOPped or dripping nodes do): locate and
    the quick path stop waiting for them, and the three others serve the file."""
    data = os.urandom(size)
    _, res = _put(grid, data, segment_size=256 * 1024)
    live = {res.placement[s].node_id for s in (0, 5, 9)}  # type: ignore[attr-defined]
    for n in grid.nodes:
        if n.info.node_id not in live:
            n.stall = 3600
    got, warnings = _get(grid, res.cap)  # type: ignore[attr-defined]
    assert got == data
    assert any("not waited for" in w for w in warnings)
