"""The node's share store on a real directory: atomic writes, no overwrite, capacity, proofs."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.erasure import Codec
from veil.errors import IntegrityError, StorageFullError
from veil.format.merkle import Levels, verify_range
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.storage import UploadRequest, parse_range_head
from veil.storage.store import ConflictError, ShareStore

SI = bytes(range(16))


def share_blocks(nseg: int, seed: int = 0) -> tuple[list[bytes], list[bytes]]:
    codec = Codec(2, 3)
    segs = [bytes([(seed + i) % 256]) * 1000 for i in range(nseg)]
    return [codec.encode(s)[0] for s in segs], [SEGMENT_TREE.leaf(s) for s in segs]


def upload(store: ShareStore, shnum: int, blocks: list[bytes], seg_leaves: list[bytes]) -> bytes:
    bsize = len(blocks[0])
    uid = store.begin_upload(UploadRequest(SI, shnum, len(blocks), bsize, len(blocks[-1])))
    body = b"".join(sl + b for sl, b in zip(seg_leaves, blocks, strict=True))
    store.write_blocks(uid, 0, memoryview(body))
    root = Levels.build(BLOCK_TREE, [BLOCK_TREE.leaf(b) for b in blocks]).root()
    segroot = Levels.build(SEGMENT_TREE, seg_leaves).root()
    return store.commit_upload(uid, root, segroot)


def test_upload_read_and_proofs(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, sl = share_blocks(7)
    root = upload(store, 0, blocks, sl)
    head, off, length, path = store.read_range(SI, 0, 2, 3)
    h = parse_range_head(head)
    data = path.read_bytes()[off : off + length]
    bl = [data[i * len(blocks[0]) : (i + 1) * len(blocks[0])] for i in range(3)]
    assert bl == blocks[2:5]
    verify_range(BLOCK_TREE, root, 7, 2, [BLOCK_TREE.leaf(b) for b in bl], h.bproof)
    assert store.list_shares(SI)[0] == [0]
    # a second store over the same directory (a restart) sees the share and no leftovers
    store2 = ShareStore(tmp_path)
    assert store2.list_shares(SI)[0] == [0]
    assert list((tmp_path / "incoming").iterdir()) == []


def test_incomplete_upload_is_never_visible(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, sl = share_blocks(4)
    uid = store.begin_upload(UploadRequest(SI, 1, 4, len(blocks[0]), len(blocks[-1])))
    store.write_blocks(uid, 0, memoryview(sl[0] + blocks[0]))
    assert store.list_shares(SI)[0] == []
    with pytest.raises(IntegrityError):
        store.commit_upload(uid, bytes(32), bytes(32))
    assert store.list_shares(SI)[0] == []
    assert list((tmp_path / "incoming").iterdir()) == []


def test_wrong_order_and_wrong_root_refused(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, sl = share_blocks(3)
    uid = store.begin_upload(UploadRequest(SI, 2, 3, len(blocks[0]), len(blocks[-1])))
    with pytest.raises(IntegrityError):
        store.write_blocks(uid, 1, memoryview(sl[1] + blocks[1]))
    store.write_blocks(uid, 0, memoryview(b"".join(a + b for a, b in zip(sl, blocks, strict=True))))
    with pytest.raises(IntegrityError):
        store.commit_upload(uid, bytes(32), Levels.build(SEGMENT_TREE, sl).root())


def test_existing_share_is_never_overwritten(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    blocks, sl = share_blocks(3)
    root = upload(store, 0, blocks, sl)
    assert upload(store, 0, blocks, sl) == root  # idempotent
    other, osl = share_blocks(3, seed=9)
    with pytest.raises(ConflictError):
        upload(store, 0, other, osl)
    _, off, length, path = store.read_range(SI, 0, 0, 3)
    assert path.read_bytes()[off : off + length] == b"".join(blocks)


def test_capacity_is_enforced_before_storing(tmp_path: Path) -> None:
    store = ShareStore(tmp_path, capacity=20_000)
    blocks, sl = share_blocks(3)
    upload(store, 0, blocks, sl)
    with pytest.raises(StorageFullError):
        upload(store, 1, *share_blocks(30))
    assert store.list_shares(SI)[0] == [0]
