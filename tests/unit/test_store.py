"""The node's share store on a real directory: slots, commit with the manifest, one-shot shares,
atomic writes, capacity, proofs, and the bounds on upload sessions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from veil.errors import IntegrityError, NotFoundError, StorageFullError, UsageError
from veil.format.manifest import manifest_hash
from veil.format.merkle import verify_range
from veil.format.share import BLOCK_TREE, SEGMENT_TREE
from veil.protocol.storage import MAX_SLOTS_PER_SI, Commit, UploadRequest, parse_range_head
from veil.storage.sessions import SessionsFull
from veil.storage.slot import MAX_SHARE_SEGMENTS, MIN_BLOCK
from veil.storage.store import ConflictError, ShareStore
from veil.testing.clock import ManualClock
from veil.testing.shares import FakeShare, fake_file

SI = bytes(range(16))


def upload(store: ShareStore, sh: FakeShare, per_put: int = 2) -> bytes:
    uid = store.begin_upload(sh.request)
    for s in range(0, len(sh.blocks), per_put):
        store.write_blocks(uid, s, sh.body(s, s + per_put))
    return store.commit_upload(uid, sh.commit)


def test_upload_read_and_proofs(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=7)[0]
    assert upload(store, sh) == sh.root
    reply = store.read_range_bytes(SI, sh.mhash, 0, 2, 3)
    head = parse_range_head(reply)
    assert head.manifest is None
    blocks = [reply[head.size + i * 1024 : head.size + (i + 1) * 1024] for i in range(3)]
    assert blocks == sh.blocks[2:5]
    verify_range(BLOCK_TREE, sh.root, 7, 2, [BLOCK_TREE.leaf(b) for b in blocks], head.bproof)
    verify_range(SEGMENT_TREE, sh.segroot, 7, 2, sh.seg_leaves[2:5], head.sproof)
    with_m = parse_range_head(store.read_range_bytes(SI, sh.mhash, 0, 6, 1, with_manifest=True))
    assert with_m.manifest == sh.manifest
    assert store.list_shares(SI, sh.mhash) == ([0], sh.manifest)
    store.close()
    store2 = ShareStore(tmp_path)
    assert store2.list_shares(SI, sh.mhash) == ([0], sh.manifest)
    assert store2.slots(SI) == [sh.mhash]


def test_oneshot_stores_share_and_manifest(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    shares = fake_file(SI, nseg=4, lbsize=300)
    for sh in shares:
        assert store.put_oneshot(SI, sh.shnum, sh.oneshot()) == sh.root
    assert store.list_shares(SI, shares[0].mhash) == ([0, 1, 2], shares[0].manifest)
    reply = store.read_range_bytes(SI, shares[1].mhash, 1, 3, 1)
    assert reply.endswith(shares[1].blocks[3])
    used = store.usage()["used"]
    assert store.put_oneshot(SI, 1, shares[1].oneshot()) == shares[1].root  # idempotent
    assert store.usage()["used"] == used
    assert store.committer.batches >= 1


@pytest.mark.parametrize("where", [0, 4, 5, 9, 12, 40])
def test_oneshot_tampered_head_is_refused(tmp_path: Path, where: int) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=2)[0]
    body = bytearray(sh.oneshot())
    body[where] ^= 0x01
    with pytest.raises((IntegrityError, UsageError)):
        store.put_oneshot(SI, 0, bytes(body))
    assert store.slots(SI) == [] and store.usage()["used"] == 0


def test_oneshot_tampered_block_or_leaf_is_refused(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=3)[0]
    body = sh.oneshot()
    for where in (len(body) - 1, len(body) - 1024 - 5, len(body) - 1024 - 40):  # a block, a block, a leaf
        bad = bytearray(body)
        bad[where] ^= 0x80
        with pytest.raises(IntegrityError):
            store.put_oneshot(SI, 0, bytes(bad))
    with pytest.raises(IntegrityError):
        store.put_oneshot(SI, 0, body[:-1])
    assert store.slots(SI) == []
    assert list(store.incoming.iterdir()) == []


def test_share_must_fit_its_manifest(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    a = fake_file(SI, seed=1)
    b = fake_file(SI, seed=2)
    other_si = fake_file(bytes(16), seed=1)[0]
    # the manifest names another root for this share number
    uid = store.begin_upload(a[1].request)
    store.write_blocks(uid, 0, a[1].body())
    with pytest.raises(IntegrityError, match="root"):
        store.commit_upload(uid, Commit(a[1].root, a[1].segroot, b[1].manifest))
    # a manifest of another storage index
    uid = store.begin_upload(a[0].request)
    store.write_blocks(uid, 0, a[0].body())
    with pytest.raises(IntegrityError, match="storage index"):
        store.commit_upload(uid, Commit(a[0].root, a[0].segroot, other_si.manifest))
    # sizes that disagree with the manifest
    big = fake_file(SI, nseg=3, bsize=2048, seed=1)[0]
    uid = store.begin_upload(big.request)
    store.write_blocks(uid, 0, big.body())
    with pytest.raises(IntegrityError):
        store.commit_upload(uid, Commit(big.root, big.segroot, a[0].manifest))
    assert store.slots(SI) == []


def test_squatter_does_not_block_the_genuine_file(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    bogus = fake_file(SI, seed=66)
    genuine = fake_file(SI, seed=1)
    for sh in bogus:
        store.put_oneshot(SI, sh.shnum, sh.oneshot())
    for sh in genuine:
        assert upload(store, sh) == sh.root
    assert store.slots(SI) == sorted([bogus[0].mhash, genuine[0].mhash])
    assert store.list_shares(SI, genuine[0].mhash) == ([0, 1, 2], genuine[0].manifest)
    assert store.read_range_bytes(SI, genuine[0].mhash, 2, 0, 3).endswith(b"".join(genuine[2].blocks))


def test_slots_per_storage_index_are_bounded(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    files = [fake_file(SI, seed=s)[0] for s in range(MAX_SLOTS_PER_SI + 1)]
    for sh in files[:-1]:
        store.put_oneshot(SI, 0, sh.oneshot())
    with pytest.raises(ConflictError):
        store.put_oneshot(SI, 0, files[-1].oneshot())
    assert len(store.slots(SI)) == MAX_SLOTS_PER_SI
    store.delete_share(SI, files[0].mhash, 0)  # the last share of a slot takes the slot with it
    assert store.manifest(SI, files[0].mhash) is None
    store.put_oneshot(SI, 0, files[-1].oneshot())
    assert files[-1].mhash in store.slots(SI)


def test_failed_upload_leaves_nothing(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=4)[0]
    uid = store.begin_upload(sh.request)
    store.write_blocks(uid, 0, sh.body(0, 2))
    with pytest.raises(IntegrityError):
        store.commit_upload(uid, sh.commit)  # incomplete
    assert store.slots(SI) == [] and list(store.incoming.iterdir()) == []
    uid = store.begin_upload(sh.request)
    with pytest.raises(IntegrityError):
        store.write_blocks(uid, 1, sh.body(1, 2))  # out of order
    with pytest.raises(IntegrityError):
        store.write_blocks(uid, 0, sh.body(0, 2)[:-1])  # ends inside a block
    with pytest.raises(IntegrityError):
        store.write_blocks(uid, 0, sh.body() + sh.body(0, 1))  # more than the share has
    bad = bytearray(sh.body())
    bad[100] ^= 1
    store.write_blocks(uid, 0, bytes(bad))
    with pytest.raises(IntegrityError, match="root"):
        store.commit_upload(uid, sh.commit)
    assert store.slots(SI) == [] and store._reserved == 0


def test_size_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=4)[0]
    reads: list[int] = []

    def readinto(mv: memoryview) -> None:
        reads.append(len(mv))
        raise AssertionError("the body must not be read")

    with pytest.raises(NotFoundError):
        store.write_blocks_from("0" * 32, 0, 32 << 20, readinto)
    uid = store.begin_upload(sh.request)
    with pytest.raises(IntegrityError):
        store.write_blocks_from(uid, 0, 32 << 20, readinto)
    assert reads == []


def test_geometry_bounds(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    with pytest.raises(UsageError):
        store.begin_upload(UploadRequest(SI, 0, 2**21, 1, 1))
    with pytest.raises(UsageError):
        store.begin_upload(UploadRequest(SI, 0, 10, MIN_BLOCK - 1, 10))
    with pytest.raises(UsageError):
        store.begin_upload(UploadRequest(SI, 0, MAX_SHARE_SEGMENTS + 1, MIN_BLOCK, MIN_BLOCK))
    store.begin_upload(UploadRequest(SI, 0, 1, 10, 10))  # a one-block share may be small
    tiny = fake_file(SI, nseg=3, bsize=16)[0]
    with pytest.raises(UsageError):
        store.put_oneshot(SI, 0, tiny.oneshot())


def test_block_hashes_are_not_kept_in_memory(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=9)[0]
    uid = store.begin_upload(sh.request)
    store.write_blocks(uid, 0, sh.body(0, 5))
    up = store.sessions.get(uid)
    assert not hasattr(up, "block_leaves") and up.next_block == 5
    store.write_blocks(uid, 5, sh.body(5))
    assert store.commit_upload(uid, sh.commit) == sh.root


def test_sessions_bounded_per_peer_and_total(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    store.sessions.max_per_peer, store.sessions.max_total = 3, 5
    req = fake_file(SI)[0].request
    ids = [store.begin_upload(req, peer="10.0.0.1") for _ in range(3)]
    with pytest.raises(SessionsFull):
        store.begin_upload(req, peer="10.0.0.1")
    store.begin_upload(req, peer="10.0.0.2")
    store.begin_upload(req, peer="10.0.0.3")
    with pytest.raises(SessionsFull):
        store.begin_upload(req, peer="10.0.0.4")
    store.abort_upload(ids[0])
    store.begin_upload(req, peer="10.0.0.1")
    assert list(store.incoming.iterdir()) == []  # no file before the first block


def test_idle_sessions_are_reaped_on_a_timer(tmp_path: Path) -> None:
    clock = ManualClock()
    store = ShareStore(tmp_path, clock=clock, reap_interval=0.02)
    sh = fake_file(SI)[0]
    uid = store.begin_upload(sh.request, peer="p")
    store.write_blocks(uid, 0, sh.body(0, 1))
    assert len(store.sessions) == 1 and store._reserved > 0
    clock.advance(store.sessions.idle_seconds + 1)
    deadline = time.monotonic() + 30
    # The reaper drops the session, then releases its reservation: wait for both.
    while (len(store.sessions) or store._reserved) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(store.sessions) == 0 and store._reserved == 0
    assert list(store.incoming.iterdir()) == []
    with pytest.raises(NotFoundError):
        store.write_blocks(uid, 1, sh.body(1, 2))


def test_racing_identical_commits_keep_one_share(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=5, seed=3)[1]
    uids = []
    for _ in range(4):
        uid = store.begin_upload(sh.request)
        store.write_blocks(uid, 0, sh.body())
        uids.append(uid)
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda u=u: got.append(store.commit_upload(u, sh.commit))) for u in uids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert got == [sh.root] * 4
    assert store.list_shares(SI, sh.mhash)[0] == [1]
    used = store.usage()["used"]
    assert upload(store, sh) == sh.root
    assert store.usage()["used"] == used


def test_share_blocks_reads_back_and_delete(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI, nseg=7, seed=3)[2]
    upload(store, sh)
    hdr, pairs = store.share_blocks(SI, sh.mhash, 2)
    got = list(pairs)
    assert (hdr.root, hdr.segroot, hdr.nseg) == (sh.root, sh.segroot, 7)
    assert [s for s, _ in got] == sh.seg_leaves and [b for _, b in got] == sh.blocks
    assert store.storage_indexes() == [SI] and store.holds(SI, 2) and not store.holds(SI, 1)
    store.delete_share(SI, sh.mhash, 2)
    assert store.list_shares(SI, sh.mhash) == ([], None) and store.usage()["used"] == 0


def test_capacity_is_reserved(tmp_path: Path) -> None:
    store = ShareStore(tmp_path, capacity=20_000)
    upload(store, fake_file(SI, nseg=3)[0])
    with pytest.raises(StorageFullError):
        store.begin_upload(fake_file(SI, nseg=30)[0].request)
    assert store.slots(SI) == [manifest_hash(fake_file(SI, nseg=3)[0].manifest)]


def test_crash_leftovers_are_cleaned(tmp_path: Path) -> None:
    store = ShareStore(tmp_path)
    sh = fake_file(SI)[0]
    store.put_oneshot(SI, 0, sh.oneshot())
    store.close()
    (tmp_path / "incoming" / "junk").write_bytes(b"x")
    lonely = store.slot_dir(SI, bytes(32))
    lonely.mkdir()
    (lonely / "manifest").write_bytes(sh.manifest)  # a slot whose share never landed
    store2 = ShareStore(tmp_path)
    assert store2.slots(SI) == [sh.mhash]
    assert list(store2.incoming.iterdir()) == []


def test_payment_gate_reads_the_payout_of_the_slot_being_read(tmp_path: Path) -> None:
    from veil.crypto.sign import SigningKey
    from veil.node.context import NodeContext, Services
    from veil.node.pay_payouts import PayoutIndex
    from veil.node.payments_role import PaymentsRole

    store = ShareStore(tmp_path / "s")
    honest = fake_file(SI, seed=1, payout=b"H" * 20)[0]
    squat = fake_file(SI, seed=2, payout=b"S" * 20)[0]
    store.put_oneshot(SI, 0, squat.oneshot())  # first writer
    role = PaymentsRole()
    role.ctx = NodeContext(tmp_path, SigningKey.generate(), "127.0.0.1", 0, services=Services(store=store))
    payouts = PayoutIndex(role._manifest)  # what the role gives the gate
    assert not payouts.lookup(SI, honest.mhash).known  # not here yet: not cached
    store.put_oneshot(SI, 0, honest.oneshot())
    assert payouts.lookup(SI, honest.mhash).address == b"H" * 20
    assert payouts.lookup(SI, squat.mhash).address == b"S" * 20
    assert store.holds(SI, 0) and not store.holds(SI, 1)  # (lease notices: test_lease_answers.py)


def test_concurrent_writes_share_one_durable_batch(tmp_path: Path) -> None:
    store = ShareStore(tmp_path, reap_interval=0)
    files = [fake_file(bytes([i]) * 16, seed=i)[0] for i in range(8)]
    b0 = store.committer.batches
    errors: list[BaseException] = []

    def put(sh: FakeShare) -> None:
        try:
            store.put_oneshot(sh.si, 0, sh.oneshot())
        except BaseException as e:
            errors.append(e)

    gate = threading.Event()

    def blocker() -> tuple[None, set[Path]]:
        gate.wait(60)
        return None, set()

    threading.Thread(target=store.committer.run, args=(blocker,)).start()  # the committer is busy
    threads = [threading.Thread(target=put, args=(sh,)) for sh in files]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(store.committer._queue) < len(files) and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(60)
    assert not errors
    assert store.committer.batches - b0 == 2  # the blocker, then all 8 installs in one durable batch
    assert all(store.list_shares(sh.si, sh.mhash)[0] == [0] for sh in files)
