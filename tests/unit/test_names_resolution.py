"""Verifiable resolution (names_proof.py): an answer checks against a certified block's names
root; a tampered record, a stale block, a proof for another name, an untrusted signer, another
chain, or a header changed after signing are all refused."""

from __future__ import annotations

from typing import Any

import pytest
from names_helpers import Chain

from veil.crypto.sign import SigningKey, node_id
from veil.errors import IntegrityError
from veil.format import cbor
from veil.ledger import tx as T
from veil.ledger.block import decode_header, encode_sigs, make_header
from veil.ledger.names import NameRec
from veil.ledger.names_proof import build_answer, lookup_names, names_root, verify_answer


def answer(ch: Chain, name: str, records: list[bytes | None] | None = None) -> dict[str, Any]:
    header, _, sigs = ch.c.blocks[-1]
    recs = records if records is not None else [
        None if (r := ch.name(n)) is None else r.encode() for n in lookup_names(name)]  # fmt: skip
    return build_answer(name, header, sigs, ch.c.names.tree, recs)


@pytest.fixture(scope="module")
def world() -> Chain:
    ch = Chain()
    ch.register("alice", "alice")
    ch.do("alice", T.NAME_SET, name="alice", key="wallet", value=ch.addr["alice"])
    ch.do("alice", T.NAME_SUB, name="blog.alice", owner=ch.addr["bob"])
    ch.do("bob", T.NAME_SET, name="blog.alice", key="site", value="veil:fr1:blog")
    ch.register("carol", "carol-x")
    return ch


def trusted(ch: Chain) -> frozenset[bytes]:
    return frozenset({node_id(ch.c.validator.public_key)})


def check(ch: Chain, ans: Any, name: str, **kw: Any) -> Any:
    return verify_answer(ans, name, ch.c.params.chain_id, kw.pop("trust", trusted(ch)), **kw)


def test_resolves_with_proof(world: Chain) -> None:
    res = check(world, answer(world, "alice"), "alice")
    assert res.active and res.get("wallet") == world.addr["alice"]
    assert res.height == len(world.c.blocks) and res.expires == world.name("alice").expires  # type: ignore[union-attr]
    sub = check(world, answer(world, "blog.alice"), "blog.alice")
    assert sub.active and sub.get("site") == "veil:fr1:blog" and sub.record.owner == world.addr["bob"]
    none = check(world, answer(world, "nobody"), "nobody")
    assert none.status == "unregistered" and none.record is None


def test_tampered_record_is_refused(world: Chain) -> None:
    rec = world.name("alice")
    assert rec is not None
    forged = rec.with_record("wallet", world.addr["carol"]).encode()
    with pytest.raises(IntegrityError, match="does not match"):
        check(world, answer(world, "alice", [forged]), "alice")
    with pytest.raises(IntegrityError, match="does not match"):  # hiding a registered name
        check(world, answer(world, "alice", [None]), "alice")
    with pytest.raises(IntegrityError, match="does not match"):  # a subname whose parent is forged away
        check(world, answer(world, "blog.alice", [world.name("blog.alice").encode(), None]), "blog.alice")  # type: ignore[union-attr]


def test_proof_for_another_name_is_refused(world: Chain) -> None:
    with pytest.raises(IntegrityError, match="not about"):
        check(world, answer(world, "alice"), "carol-x")
    ans = answer(world, "alice")
    ans["entries"][0][0] = "carol-x"  # relabelled: alice's record and path offered for carol-x
    with pytest.raises(IntegrityError, match="does not match"):
        check(world, ans, "carol-x")
    carol = answer(world, "carol-x")
    ans = answer(world, "alice")
    ans["entries"][0][2] = carol["entries"][0][2]  # alice's record with carol-x's path
    with pytest.raises(IntegrityError, match="does not match"):
        check(world, ans, "alice")


def test_stale_block_is_refused(world: Chain) -> None:
    ans = answer(world, "alice")
    check(world, ans, "alice", min_height=ans["height"])
    with pytest.raises(IntegrityError, match="stale"):
        check(world, ans, "alice", min_height=ans["height"] + 1)


def test_signatures_must_come_from_trusted_validators(world: Chain) -> None:
    ans = answer(world, "alice")
    other = SigningKey(b"\x42" * 32)
    with pytest.raises(IntegrityError, match="valid signatures"):
        check(world, ans, "alice", trust=frozenset({node_id(other.public_key)}))
    with pytest.raises(IntegrityError, match="valid signatures"):  # a majority of two trusted is two
        check(world, ans, "alice", trust=trusted(world) | {node_id(other.public_key)})
    # a validator that signs its own header with a made-up names root is not trusted
    h = decode_header(ans["header"])
    fake = make_header(h.chain, h.height, h.prev, h.time, [], h.state, h.vset, {"names": b"\x01" * 32})
    forged = dict(ans, header=fake.raw, sigs=encode_sigs({other.public_key: fake.sign(other)}))
    with pytest.raises(IntegrityError, match="valid signatures"):
        check(world, forged, "alice")
    # the real validator's signature does not cover a changed header
    forged = dict(ans, header=fake.raw)
    with pytest.raises(IntegrityError, match="valid signatures"):
        check(world, forged, "alice")


def test_other_chain_and_garbage(world: Chain) -> None:
    ans = answer(world, "alice")
    with pytest.raises(IntegrityError, match="another chain"):
        verify_answer(ans, "alice", "f" * 64, trusted(world))
    for bad in [None, {}, dict(ans, header=b"junk"), dict(ans, entries="x"), dict(ans, entries=[["alice", 5, []]]),
                dict(ans, entries=[["alice", ans["entries"][0][1], [["x"], None]]]),
                dict(ans, entries=[["alice", b"\xa0", ans["entries"][0][2]]])]:  # fmt: skip
        with pytest.raises(IntegrityError):
            check(world, bad, "alice")


def test_expired_at_the_block_time() -> None:
    ch = Chain()
    ch.register("alice", "alice")
    exp = ch.name("alice").expires  # type: ignore[union-attr]
    ch.at(exp + 1).do("bob", T.NAME_COMMIT, hash=b"\x09" * 32)  # any block after the expiry
    res = check(ch, answer(ch, "alice"), "alice")
    assert res.status == "expired" and res.get("wallet") is None
    assert names_root(decode_header(ch.c.blocks[-1][0])) == ch.c.names.tree.root
    assert NameRec.decode(answer(ch, "alice")["entries"][0][1]).owner == ch.addr["alice"]
    assert cbor.decode(answer(ch, "alice")["sigs"], 4096)


def test_certified_header_cache_still_checks_every_proof(world: Chain) -> None:
    cache: dict[bytes, Any] = {}
    ans = answer(world, "alice")
    other = SigningKey(b"\x43" * 32)
    with pytest.raises(IntegrityError):  # a refused certificate is not cached
        check(world, ans, "alice", trust=frozenset({node_id(other.public_key)}), certified=cache)
    assert cache == {}
    assert check(world, ans, "alice", certified=cache).active
    assert list(cache) == [ans["header"]]
    forged = world.name("alice").with_record("wallet", world.addr["carol"]).encode()  # type: ignore[union-attr]
    with pytest.raises(IntegrityError, match="does not match"):
        check(world, answer(world, "alice", [forged]), "alice", certified=cache)
    with pytest.raises(IntegrityError, match="stale"):
        check(world, ans, "alice", certified=cache, min_height=ans["height"] + 1)
