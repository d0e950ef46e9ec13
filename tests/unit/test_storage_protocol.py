"""The storage v2 wire bodies (protocol/storage.py) and the node's checks on them: round trips,
and tamper tests — every byte of a one-shot head flipped is refused, or (inside the manifest's
free fields) makes a different manifest, which lands in a slot of its own and never in the
genuine one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.errors import IntegrityError, UsageError
from veil.format import cbor
from veil.format.manifest import manifest_hash
from veil.protocol.storage import (
    Commit,
    encode_commit,
    encode_oneshot_head,
    encode_range_head,
    oneshot_head_size,
    parse_commit,
    parse_mhash,
    parse_oneshot_head,
    parse_range_head,
)
from veil.storage.slot import blocks_body_len, blocks_in_body, check_slot
from veil.storage.store import ShareStore
from veil.testing.shares import fake_file

SI = bytes(range(16))


def test_oneshot_head_round_trip() -> None:
    sh = fake_file(SI, nseg=3, lbsize=10)[1]
    raw = encode_oneshot_head(3, 1024, 10, sh.root, sh.segroot, sh.manifest)
    assert oneshot_head_size(raw[:9]) == len(raw)
    h = parse_oneshot_head(raw + b"blocks follow")
    assert (h.nseg, h.bsize, h.lbsize, h.root, h.segroot, h.manifest, h.size) == (
        3, 1024, 10, sh.root, sh.segroot, sh.manifest, len(raw))
    assert h.blocks_len == 3 * 32 + 2 * 1024 + 10
    with pytest.raises(IntegrityError):
        parse_oneshot_head(raw[:-1])
    with pytest.raises(IntegrityError):
        oneshot_head_size(b"VLSU\x02" + raw[5:9])
    with pytest.raises(IntegrityError):
        oneshot_head_size(b"VLSU\x01" + (1 << 20).to_bytes(4, "big"))


def test_commit_and_range_head_round_trip() -> None:
    sh = fake_file(SI)[0]
    assert parse_commit(cbor.decode(encode_commit(sh.commit), 1 << 17)) == sh.commit
    with pytest.raises(IntegrityError):
        parse_commit({"root": sh.root, "segroot": sh.segroot})
    with pytest.raises(IntegrityError):
        parse_commit({"root": sh.root[:31], "segroot": sh.segroot, "manifest": sh.manifest})
    head = encode_range_head(2, 1, [sh.root], [sh.segroot], sh.manifest)
    got = parse_range_head(head)
    assert (got.start, got.count, got.manifest, got.size) == (2, 1, sh.manifest, len(head))
    assert parse_range_head(encode_range_head(0, 1, [], [])).manifest is None
    for bad in ("", "zz" * 32, "ab" * 31):
        with pytest.raises(IntegrityError):
            parse_mhash(bad)
    assert parse_mhash("ab" * 32) == bytes([0xAB]) * 32


def test_check_slot_each_field() -> None:
    sh = fake_file(SI, nseg=3)[2]
    man, mhash = check_slot(SI, 2, 3, 1024, 1024, sh.root, sh.segroot, sh.manifest)
    assert mhash == manifest_hash(sh.manifest) and man.roots[2] == sh.root
    bad = [
        (bytes(16), 2, 3, 1024, 1024, sh.root, sh.segroot),  # another storage index
        (SI, 1, 3, 1024, 1024, sh.root, sh.segroot),  # another share's root
        (SI, 3, 3, 1024, 1024, sh.root, sh.segroot),  # shnum >= n
        (SI, 2, 3, 1024, 1024, sh.root, sh.root),  # segroot
        (SI, 2, 4, 1024, 1024, sh.root, sh.segroot),  # nseg
        (SI, 2, 3, 2048, 1024, sh.root, sh.segroot),  # bsize
        (SI, 2, 3, 1024, 1000, sh.root, sh.segroot),  # lbsize
    ]
    for args in bad:
        with pytest.raises(IntegrityError):
            check_slot(*args, sh.manifest)


def test_body_sizes() -> None:
    assert blocks_body_len(3, 1024, 10, 0, 3) == 3 * 32 + 2048 + 10
    assert blocks_in_body(3, 1024, 10, 0, 2 * 1056) == 2
    assert blocks_in_body(3, 1024, 10, 1, 1056 + 42) == 2
    assert blocks_in_body(1, 10, 10, 0, 42) == 1
    for start, n in ((0, 1056 + 1), (0, 3 * 1056), (2, 1056), (3, 42), (0, 0)):
        with pytest.raises(IntegrityError):
            blocks_in_body(3, 1024, 10, start, n)


def test_every_flipped_head_byte_is_refused_or_makes_another_slot(tmp_path: Path) -> None:
    store = ShareStore(tmp_path, reap_interval=0)
    sh = fake_file(SI, nseg=2)[0]
    body = sh.oneshot()
    size = oneshot_head_size(body[:9])
    man_at = body.index(sh.manifest)
    refused = other_slot = 0
    for i in range(size):
        bad = bytearray(body)
        bad[i] ^= 0x01
        try:
            store.put_oneshot(SI, 0, bytes(bad))
        except (IntegrityError, UsageError):
            refused += 1
            continue
        # Accepted: only possible when the flip is inside the manifest (its meta, say), so the
        # share went into that other manifest's slot, never the genuine one.
        assert man_at <= i < man_at + len(sh.manifest)
        (slot,) = store.slots(SI)
        assert slot != sh.mhash
        store.delete_share(SI, slot, 0)
        other_slot += 1
    assert refused > size // 2 and store.slots(SI) == []
    assert store.put_oneshot(SI, 0, body) == sh.root and store.slots(SI) == [sh.mhash]
    assert Commit(sh.root, sh.segroot, sh.manifest) == sh.commit


@given(nseg=st.integers(1, 50), bsize=st.integers(1024, 5000), data=st.data())
def test_blocks_in_body_inverts_body_len(nseg: int, bsize: int, data: st.DataObject) -> None:
    lbsize = data.draw(st.integers(1, bsize)) if nseg > 1 else bsize
    start = data.draw(st.integers(0, nseg - 1))
    count = data.draw(st.integers(1, nseg - start))
    n = blocks_body_len(nseg, bsize, lbsize, start, count)
    assert blocks_in_body(nseg, bsize, lbsize, start, n) == count
    for off in (-1, 1):
        with pytest.raises(IntegrityError):
            blocks_in_body(nseg, bsize, lbsize, start, n + off)
