"""What repair and drain need from the share store: an identical share committed again (two
repairers racing) is accepted without a deadlock and without a second copy; a stored share
reads back block by block exactly as it was written (drain's hand-over)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from veil.erasure import Codec
from veil.format.merkle import Levels
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.storage import UploadRequest
from veil.storage.store import ConflictError, ShareStore

SI = bytes(range(16))


def _share(nseg: int, seed: int) -> tuple[list[bytes], list[bytes], bytes, bytes]:
    codec = Codec(2, 3)
    segs = [bytes([(seed + i) % 256]) * 999 for i in range(nseg)]
    blocks = [codec.encode(s)[1] for s in segs]
    leaves = [SEGMENT_TREE.leaf(s) for s in segs]
    root = Levels.build(BLOCK_TREE, [BLOCK_TREE.leaf(b) for b in blocks]).root()
    return blocks, leaves, root, Levels.build(SEGMENT_TREE, leaves).root()


def _begin(store: ShareStore, blocks: list[bytes], leaves: list[bytes]) -> str:
    uid = store.begin_upload(UploadRequest(SI, 1, len(blocks), len(blocks[0]), len(blocks[-1])))
    store.write_blocks(uid, 0, memoryview(b"".join(sl + b for sl, b in zip(leaves, blocks, strict=True))))
    return uid


def test_racing_identical_commits_keep_one_share(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, leaves, root, segroot = _share(5, 1)
    uids = [_begin(store, blocks, leaves) for _ in range(4)]
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda u=u: got.append(store.commit_upload(u, root, segroot))) for u in uids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert got == [root] * 4
    assert store.list_shares(SI)[0] == [1]
    used = store.usage()["used"]
    assert store.commit_upload(_begin(store, blocks, leaves), root, segroot) == root
    assert store.usage()["used"] == used


def test_a_different_share_never_replaces_a_stored_one(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, leaves, root, segroot = _share(3, 1)
    store.commit_upload(_begin(store, blocks, leaves), root, segroot)
    other, oleaves, oroot, osegroot = _share(3, 9)
    with pytest.raises(ConflictError):
        store.commit_upload(_begin(store, other, oleaves), oroot, osegroot)
    hdr, pairs = store.share_blocks(SI, 1)
    assert hdr.root == root and [b for _, b in pairs] == blocks


def test_share_blocks_reads_back_what_was_written(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, leaves, root, segroot = _share(7, 3)
    store.commit_upload(_begin(store, blocks, leaves), root, segroot)
    hdr, pairs = store.share_blocks(SI, 1)
    got = list(pairs)
    assert (hdr.root, hdr.segroot, hdr.nseg) == (root, segroot, 7)
    assert [sl for sl, _ in got] == leaves and [b for _, b in got] == blocks
    assert store.storage_indexes() == [SI]
    store.delete_share(SI, 1)
    assert store.list_shares(SI)[0] == []
