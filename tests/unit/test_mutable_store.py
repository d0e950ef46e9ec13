"""The node's mutable slot store (storage/mutable.py) on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, StorageFullError
from veil.format.mutable import Checkstring, parse_record, sign_record, slot_id
from veil.storage.mutable import ANY, MutableStore, SlotConflict

KEY = SigningKey(bytes([3]) * 32)
SLOT = slot_id(KEY.public_key)


def rec(seq: int, payload: bytes = b"") -> bytes:
    """Version ``seq`` of a straight history (each built on the one before)."""
    parents = (chain(seq - 1),) if seq > 1 else ()
    return sign_record(KEY, seq, payload or f"v{seq}".encode(), parents).raw


def chain(seq: int) -> Checkstring:
    return parse_record(rec(seq), SLOT).checkstring


@pytest.fixture
def store(tmp_path: Path) -> MutableStore:
    return MutableStore(tmp_path / "slots.sqlite", keep=3)


def test_keeps_the_highest_and_a_bounded_history(store: MutableStore) -> None:
    assert store.get(SLOT) is None
    for seq in range(1, 6):
        store.put(SLOT, rec(seq))
    assert store.get(SLOT) == rec(5)
    assert [v.seq for v in store.versions(SLOT)] == [5, 4, 3]
    assert store.get(SLOT, 3) == rec(3) and store.get(SLOT, 2) is None
    assert store.usage()["slots"] == 1 and store.usage()["bytes"] == sum(len(rec(s)) for s in (3, 4, 5))


def test_lower_or_equal_sequence_numbers_are_refused_with_the_current(store: MutableStore) -> None:
    store.put(SLOT, rec(4))
    for seq, payload in ((3, b""), (4, b"another version 4")):
        with pytest.raises(SlotConflict) as e:
            store.put(SLOT, rec(seq, payload))
        assert e.value.current == rec(4)
    store.put(SLOT, rec(4))  # the same record again: a no-op, so a retried PUT succeeds
    assert [v.seq for v in store.versions(SLOT)] == [4]


def test_forged_or_foreign_records_are_never_stored(store: MutableStore) -> None:
    good = bytearray(rec(1))
    good[50] ^= 1
    with pytest.raises(IntegrityError):
        store.put(SLOT, bytes(good))
    other = SigningKey(bytes([4]) * 32)
    with pytest.raises(IntegrityError):
        store.put(SLOT, sign_record(other, 9, b"x").raw)
    assert store.get(SLOT) is None and store.usage()["bytes"] == 0


def test_compare_and_swap(store: MutableStore) -> None:
    with pytest.raises(SlotConflict) as e:
        store.put(SLOT, rec(1), expect=sign_record(KEY, 1, b"x").checkstring)
    assert e.value.current is None
    first = store.put(SLOT, rec(1), expect=None)
    with pytest.raises(SlotConflict):
        store.put(SLOT, rec(2), expect=None)  # "must be empty" no longer holds
    stale = sign_record(KEY, 1, b"sibling").checkstring
    with pytest.raises(SlotConflict) as e:
        store.put(SLOT, rec(2), expect=stale)  # same seq, other record: CAS names the hash too
    assert e.value.current == rec(1)
    store.put(SLOT, rec(2), expect=first.checkstring)
    store.put(SLOT, rec(3), expect=ANY)
    assert store.get(SLOT) == rec(3)


def test_a_version_must_be_built_on_the_current_one(store: MutableStore) -> None:
    store.put(SLOT, rec(1))
    store.put(SLOT, rec(2))
    sibling = sign_record(KEY, 3, b"built on 1, not 2", (chain(1),)).raw
    orphan = sign_record(KEY, 9, b"no parents").raw
    for bad in (sibling, orphan):
        for expect in (ANY, chain(2)):
            with pytest.raises(SlotConflict, match="not built on") as e:
                store.put(SLOT, bad, expect)
            assert e.value.current == rec(2)
    # A version several steps ahead, naming the current one among its parents, fast-forwards.
    ahead = sign_record(KEY, 6, b"six", (Checkstring(5, bytes(32)), chain(2))).raw
    store.put(SLOT, ahead, chain(2))
    assert store.get(SLOT) == ahead


def test_survives_reopening(tmp_path: Path) -> None:
    s = MutableStore(tmp_path / "slots.sqlite")
    s.put(SLOT, rec(1))
    s.put(SLOT, rec(2))
    s.close()
    s = MutableStore(tmp_path / "slots.sqlite")
    assert s.get(SLOT) == rec(2) and [v.seq for v in s.versions(SLOT)] == [2, 1]
    with pytest.raises(SlotConflict):
        s.put(SLOT, rec(2, b"late sibling"))
    assert s.usage()["bytes"] == len(rec(1)) + len(rec(2))


def test_full_store_refuses_and_keeps_what_it_has(tmp_path: Path) -> None:
    s = MutableStore(tmp_path / "slots.sqlite", max_bytes=len(rec(1)) + 10)
    s.put(SLOT, rec(1))
    with pytest.raises(StorageFullError):
        s.put(SLOT, rec(2, b"x" * 100))
    assert s.get(SLOT) == rec(1)
