"""Names: Hypothesis runs of random name operations (supply conserved after every one, replay
reaches the same state and names roots), and the names tree's proofs."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st
from names_helpers import Chain

from veil.errors import LedgerError
from veil.ledger import tx as T
from veil.ledger.names import commit_hash
from veil.ledger.names_tree import EMPTY, NameTree, Proof, check_proof

PEOPLE = ("alice", "bob", "carol")
NAMES = ("abc", "abcd", "alice", "bobby", "blog.alice", "shop.bobby")
SALT = b"p" * 16

op = st.tuples(
    st.sampled_from(["commit", "register", "renew", "transfer", "set", "unset", "sub", "unsub", "bid", "claim"]),
    st.sampled_from(PEOPLE), st.sampled_from(NAMES), st.sampled_from(PEOPLE),
    st.integers(1, 3), st.sampled_from([0, 1, 30, 61, 400, 700, 1100]),
)


def _apply(ch: Chain, kind: str, who: str, name: str, other: str, n: int) -> None:
    a = ch.addr
    if kind == "commit":
        ch.do(who, T.NAME_COMMIT, hash=commit_hash(name, a[who], SALT))
    elif kind == "register":
        ch.do(who, T.NAME_REGISTER, name=name, salt=SALT, years=n)
    elif kind == "renew":
        ch.do(who, T.NAME_RENEW, name=name, years=n)
    elif kind == "transfer":
        ch.do(who, T.NAME_TRANSFER, name=name, to=a[other])
    elif kind == "set":
        ch.do(who, T.NAME_SET, name=name, key="wallet", value=a[other])
    elif kind == "unset":
        ch.do(who, T.NAME_UNSET, name=name, key="wallet")
    elif kind in ("sub", "unsub"):
        ch.do(who, T.NAME_SUB, name=name, **({"owner": a[other]} if kind == "sub" else {}))
    elif kind == "bid":
        ch.do(who, T.NAME_BID, name=name, amount=10 * 16 * n * n)
    else:
        ch.do(who, T.NAME_CLAIM, name=name)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=40))
def test_supply_conserved_across_any_name_operations(ops: list[tuple[str, str, str, str, int, int]]) -> None:
    ch = Chain(PEOPLE)
    minted = ch.c.state.supply.minted
    for kind, who, name, other, n, dt in ops:
        ch.at(ch.now + dt)
        try:
            _apply(ch, kind, who, name, other, n)
        except LedgerError:
            pass
        st_ = ch.c.state
        assert st_.supply.minted == minted
        assert st_.total_held() == minted
    r = ch.c.replay()  # every block's state hash and names root recomputed from genesis
    r.check_supply()
    assert r.state.state_hash == ch.c.state.state_hash


def _keys(n: int, seed: int = 0) -> dict[bytes, bytes]:
    return {hashlib.sha256(b"k%d-%d" % (seed, i)).digest(): hashlib.sha256(b"v%d" % i).digest() for i in range(n)}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.randoms(use_true_random=False))
def test_tree_root_is_canonical_and_proofs_check(n: int, rnd: object) -> None:
    leaves = _keys(n)
    items = list(leaves.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    t = NameTree(dict(items))
    assert t.root == NameTree(leaves).root  # the set decides the root, not the order
    if n == 0:
        assert t.root == EMPTY
    for k, v in leaves.items():
        p = t.prove(k)
        assert check_proof(t.root, k, v, p)
        assert not check_proof(t.root, k, hashlib.sha256(v).digest(), p)  # another record
        assert not check_proof(t.root, k, None, p)  # claiming absence of a present key
    for k in _keys(5, seed=1):
        p = t.prove(k)
        assert check_proof(t.root, k, None, p)  # absent, proved
        assert not check_proof(t.root, k, b"\x01" * 32, p)


def test_tree_updates_match_a_fresh_build() -> None:
    leaves = _keys(30)
    t = NameTree(leaves)
    gone = next(iter(leaves))
    new = hashlib.sha256(b"new").digest()
    t2 = t.updated({gone: None, new: b"\x02" * 32})
    fresh = dict(leaves)
    del fresh[gone]
    fresh[new] = b"\x02" * 32
    assert t2.root == NameTree(fresh).root != t.root


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.booleans()), max_size=30))
def test_incremental_updates_match_fresh_builds(steps: list[tuple[int, bool]]) -> None:
    pool = list(_keys(61, seed=3))
    leaves = dict(list(_keys(61, seed=3).items())[:20])
    t = NameTree(leaves)
    for i, delete in steps:
        k = pool[i]
        if delete:
            leaves.pop(k, None)
        else:
            leaves[k] = hashlib.sha256(k + bytes([i])).digest()
        t = t.updated({k: leaves.get(k)})
        assert t.root == NameTree(leaves).root
        for kk in list(leaves)[:3]:
            assert check_proof(t.root, kk, leaves[kk], t.prove(kk))


def test_forged_proofs_fail() -> None:
    leaves = _keys(12)
    t = NameTree(leaves)
    k, v = next(iter(leaves.items()))
    p = t.prove(k)
    for i in range(len(p.siblings)):
        sibs = list(p.siblings)
        sibs[i] = bytes(32 - 1) + b"\x01"
        assert not check_proof(t.root, k, v, Proof(tuple(sibs)))
    assert not check_proof(t.root, k, v, Proof(p.siblings[:-1]))  # a shorter path
    assert not check_proof(t.root, k, v, Proof((*p.siblings, EMPTY)))  # a longer one
    # absence "proved" by a leaf that does not sit on the absent key's path
    absent = next(a for a in _keys(50, seed=2) if t.prove(a).other is not None)
    pa = t.prove(absent)
    assert check_proof(t.root, absent, None, pa)
    assert pa.other is not None
    elsewhere = next(x for x in leaves.items() if x[0] != pa.other[0])
    assert not check_proof(t.root, absent, None, pa._replace(other=elsewhere))
    assert not check_proof(t.root, pa.other[0], None, pa._replace(other=pa.other))  # "absent" a present key
