"""Name rules on the ledger (names.md): spelling, commit-reveal windows, fees, expiry, grace and
release, renewal, transfer, records, subnames, auctions (outbid, late-bid extension, burn,
refunds), and every rejection code. Time is the block's: the tests move a manual clock."""

from __future__ import annotations

import pytest
from names_helpers import PARAMS, START, Chain

from veil.errors import LedgerError
from veil.ledger import tx as T
from veil.ledger.names import commit_hash, min_next_bid, parse_name, yearly_fee
from veil.ledger.tx import decode_tx

FEE = 1  # every test transaction pays the minimum fee


@pytest.mark.parametrize("bad", ["ab", "a" * 64, "Alice", "alice_1", "-alice", "alice-", "аlice", "al ice",
                                 "a.b.alice", "", "alice..x", "x.veil.veil"])  # fmt: skip
def test_bad_spellings_are_refused(bad: str) -> None:
    with pytest.raises(LedgerError) as e:
        decode_tx(Chain().raw("alice", T.NAME_RENEW, name=bad, years=1))
    assert e.value.code == "bad_name"
    if bad.lower() == bad:  # what a user types is lowercased first; these stay wrong
        with pytest.raises(LedgerError):
            parse_name(bad)


def test_good_spellings() -> None:
    assert parse_name("Alice.VEIL") == "alice"
    assert parse_name("blog.alice.veil") == "blog.alice"
    assert parse_name("a-1" + "b" * 60) == "a-1" + "b" * 60
    assert parse_name("x-y") == "x-y"


def test_fee_falls_with_length() -> None:
    fees = [yearly_fee(PARAMS, n) for n in range(3, 10)]
    assert fees == [160, 80, 40, 20, 10, 10, 10]


def test_commit_reveal_windows_and_fee() -> None:
    ch = Chain()
    salt = b"x" * 16
    ch.do("alice", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["alice"], salt))
    t0 = ch.now
    ch.at(t0 + PARAMS.name_commit_min - 1).refused("commit_too_new", "alice", T.NAME_REGISTER, name="alice", salt=salt, years=2)
    before, pool = ch.balance("alice"), ch.c.state.supply.pool
    ch.at(t0 + PARAMS.name_commit_min).do("alice", T.NAME_REGISTER, name="alice", salt=salt, years=2)
    rec = ch.name("alice")
    assert rec is not None and rec.owner == ch.addr["alice"] and rec.expires == ch.now + 2 * PARAMS.name_year
    assert before - ch.balance("alice") == 2 * yearly_fee(PARAMS, 5) + FEE
    assert ch.c.state.supply.pool - pool == 2 * yearly_fee(PARAMS, 5) + FEE  # fees fund the allowance pool
    assert ch.c.state.get_commit(commit_hash("alice", ch.addr["alice"], salt)) is None  # used up
    ch.conserved()


def test_reveal_too_late_front_run_and_wrong_salt() -> None:
    ch = Chain()
    salt = b"y" * 16
    ch.do("alice", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["alice"], salt))
    t0 = ch.now
    ch.at(t0 + 100)
    # bob saw alice's reveal in flight and sends the same name and salt: the commitment binds alice
    ch.refused("no_commit", "bob", T.NAME_REGISTER, name="alice", salt=salt, years=1)
    ch.refused("no_commit", "alice", T.NAME_REGISTER, name="alice", salt=b"z" * 16, years=1)
    ch.refused("commit_exists", "alice", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["alice"], salt))
    ch.at(t0 + PARAMS.name_commit_max + 1).refused("commit_expired", "alice", T.NAME_REGISTER, name="alice", salt=salt,
                                                   years=1)  # fmt: skip
    ch.do("alice", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["alice"], salt))  # an expired commit may be redone


def test_years_and_short_names() -> None:
    ch = Chain()
    ch.do("alice", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["alice"], b"s" * 16))
    ch.at(ch.now + 60).refused("bad_years", "alice", T.NAME_REGISTER, name="alice", salt=b"s" * 16, years=6)
    ch.refused("auction_only", "alice", T.NAME_REGISTER, name="abcd", salt=b"s" * 16, years=1)
    ch.refused("bad_name", "alice", T.NAME_REGISTER, name="blog.alice", salt=b"s" * 16, years=1)
    ch.refused("not_auction", "alice", T.NAME_BID, name="alice", amount=1000)


def test_expiry_grace_release() -> None:
    ch = Chain()
    ch.register("alice", "alice")
    exp = ch.name("alice").expires  # type: ignore[union-attr]
    ch.at(exp - 1).do("alice", T.NAME_SET, name="alice", key="text:bio", value="hi")
    ch.at(exp).refused("name_expired", "alice", T.NAME_SET, name="alice", key="text:bio", value="later")
    ch.refused("name_expired", "alice", T.NAME_TRANSFER, name="alice", to=ch.addr["bob"])
    # in the grace period nobody else may take it, and only the owner may renew
    ch.do("bob", T.NAME_COMMIT, hash=commit_hash("alice", ch.addr["bob"], b"b" * 16))
    ch.at(exp + 60).refused("name_taken", "bob", T.NAME_REGISTER, name="alice", salt=b"b" * 16, years=1)
    ch.refused("not_owner", "bob", T.NAME_RENEW, name="alice", years=1)
    ch.do("alice", T.NAME_RENEW, name="alice", years=1)
    assert ch.name("alice").expires == exp + PARAMS.name_year  # type: ignore[union-attr]
    # renewed names carry their records on
    assert ch.name("alice").get("text:bio") == "hi"  # type: ignore[union-attr]
    exp2 = exp + PARAMS.name_year
    ch.at(exp2 + PARAMS.name_grace).refused("name_released", "alice", T.NAME_RENEW, name="alice", years=1)
    ch.register("bob", "alice")  # released: anyone may register it
    assert ch.name("alice").owner == ch.addr["bob"] and ch.name("alice").records == ()  # type: ignore[union-attr]
    ch.conserved()


def test_renew_limits() -> None:
    ch = Chain()
    ch.register("alice", "alice", years=5)
    ch.refused("too_long", "alice", T.NAME_RENEW, name="alice", years=1)
    ch.refused("bad_years", "alice", T.NAME_RENEW, name="alice", years=6)
    ch.refused("unknown_name", "alice", T.NAME_RENEW, name="nobody", years=1)
    ch.refused("bad_name", "alice", T.NAME_RENEW, name="blog.alice", years=1)
    ch.at(ch.now + PARAMS.name_year).do("alice", T.NAME_RENEW, name="alice", years=1)


def test_transfer() -> None:
    ch = Chain()
    ch.register("alice", "alice")
    ch.refused("not_owner", "bob", T.NAME_TRANSFER, name="alice", to=ch.addr["bob"])
    ch.refused("bad_transfer", "alice", T.NAME_TRANSFER, name="alice", to=ch.addr["alice"])
    ch.refused("unknown_name", "alice", T.NAME_TRANSFER, name="zzzzz", to=ch.addr["bob"])
    ch.do("alice", T.NAME_TRANSFER, name="alice", to=ch.addr["bob"])
    assert ch.name("alice").owner == ch.addr["bob"]  # type: ignore[union-attr]
    ch.refused("not_owner", "alice", T.NAME_SET, name="alice", key="text:x", value="y")
    ch.do("bob", T.NAME_SET, name="alice", key="text:x", value="y")


def test_records() -> None:
    ch = Chain()
    ch.register("alice", "alice")
    ch.do("alice", T.NAME_SET, name="alice", key="wallet", value=ch.addr["alice"])
    ch.do("alice", T.NAME_SET, name="alice", key="site", value="veil:fr1:abc")
    ch.do("alice", T.NAME_SET, name="alice", key="file", value="veil:r1:abc")
    ch.do("alice", T.NAME_SET, name="alice", key="node", value=b"\x07" * 32)
    ch.do("alice", T.NAME_SET, name="alice", key="text:email", value="a@example.org")
    rec = ch.name("alice")
    assert rec is not None and [k for k, _ in rec.records] == ["file", "node", "site", "text:email", "wallet"]
    ch.do("alice", T.NAME_SET, name="alice", key="wallet", value=ch.addr["bob"])  # replace
    assert ch.name("alice").get("wallet") == ch.addr["bob"]  # type: ignore[union-attr]
    ch.do("alice", T.NAME_UNSET, name="alice", key="file")
    assert ch.name("alice").get("file") is None  # type: ignore[union-attr]
    ch.refused("no_record", "alice", T.NAME_UNSET, name="alice", key="file")
    ch.refused("not_owner", "bob", T.NAME_UNSET, name="alice", key="site")
    for key, value in [("wallet", b"short"), ("site", "veil:r1:notafolder"), ("file", "https://x"), ("node", "text"),
                       ("colour", "red"), ("text:", "x"), ("text:a:b", "x"), ("site:x", "veil:fr1:a"),
                       ("text:big", "x" * 1025)]:  # fmt: skip
        ch.refused("bad_record", "alice", T.NAME_SET, name="alice", key=key, value=value)
    for i in range(28):  # 4 records so far: 32 in all
        ch.do("alice", T.NAME_SET, name="alice", key=f"text:k{i}", value="v")
    ch.refused("too_many_records", "alice", T.NAME_SET, name="alice", key="text:one-too-many", value="v")
    ch.conserved()


def test_subnames() -> None:
    ch = Chain()
    ch.register("alice", "alice")
    ch.refused("not_owner", "bob", T.NAME_SUB, name="blog.alice", owner=ch.addr["bob"])
    ch.refused("bad_name", "alice", T.NAME_SUB, name="alice", owner=ch.addr["bob"])
    ch.refused("unknown_name", "alice", T.NAME_SUB, name="blog.nobody", owner=ch.addr["bob"])
    ch.refused("unknown_name", "alice", T.NAME_SUB, name="blog.alice")  # nothing to take back
    ch.do("alice", T.NAME_SUB, name="blog.alice", owner=ch.addr["bob"])
    ch.refused("bad_transfer", "alice", T.NAME_SUB, name="blog.alice", owner=ch.addr["bob"])
    # the subname's owner controls the subname, and only it
    ch.do("bob", T.NAME_SET, name="blog.alice", key="site", value="veil:fr1:blog")
    ch.refused("not_owner", "alice", T.NAME_SET, name="blog.alice", key="site", value="veil:fr1:hijack")
    ch.refused("not_owner", "bob", T.NAME_SET, name="alice", key="site", value="veil:fr1:hijack")
    ch.refused("not_owner", "bob", T.NAME_SUB, name="x-y.alice", owner=ch.addr["bob"])
    ch.refused("bad_name", "bob", T.NAME_RENEW, name="blog.alice", years=1)
    ch.do("bob", T.NAME_TRANSFER, name="blog.alice", to=ch.addr["carol"])
    ch.do("carol", T.NAME_UNSET, name="blog.alice", key="site")
    # the parent's owner may give it to someone else (records do not follow) or take it back
    ch.do("carol", T.NAME_SET, name="blog.alice", key="text:by", value="carol")
    ch.do("alice", T.NAME_SUB, name="blog.alice", owner=ch.addr["bob"])
    assert ch.name("blog.alice").owner == ch.addr["bob"] and ch.name("blog.alice").records == ()  # type: ignore[union-attr]
    ch.do("alice", T.NAME_SUB, name="blog.alice")
    assert ch.name("blog.alice") is None
    ch.refused("unknown_name", "bob", T.NAME_SET, name="blog.alice", key="text:a", value="b")
    # a subname dies with its parent's registration
    ch.do("alice", T.NAME_SUB, name="shop.alice", owner=ch.addr["bob"])
    exp = ch.name("alice").expires  # type: ignore[union-attr]
    ch.at(exp).refused("name_expired", "bob", T.NAME_SET, name="shop.alice", key="text:a", value="b")
    ch.at(exp + PARAMS.name_grace)
    ch.register("carol", "alice")
    ch.refused("name_expired", "bob", T.NAME_SET, name="shop.alice", key="text:a", value="b")  # a new registration
    ch.do("carol", T.NAME_SUB, name="shop.alice", owner=ch.addr["carol"])
    ch.do("carol", T.NAME_SET, name="shop.alice", key="text:a", value="b")
    ch.conserved()


def test_auction_outbid_refund_extension_burn() -> None:
    ch = Chain()
    reserve = yearly_fee(PARAMS, 3)
    ch.refused("bid_too_low", "alice", T.NAME_BID, name="abc", amount=reserve - 1)
    a0, b0 = ch.balance("alice"), ch.balance("bob")
    ch.do("alice", T.NAME_BID, name="abc", amount=reserve)
    start = ch.now
    auction = ch.c.state.get_auction("abc")
    assert auction is not None and auction.end == start + PARAMS.name_auction_seconds
    assert ch.balance("alice") == a0 - reserve - FEE
    ch.refused("bid_too_low", "bob", T.NAME_BID, name="abc", amount=min_next_bid(PARAMS, 3, reserve) - 1)
    ch.at(start + 10).do("bob", T.NAME_BID, name="abc", amount=min_next_bid(PARAMS, 3, reserve))
    assert ch.balance("alice") == a0 - FEE  # the loser is refunded at once
    bob_bid = min_next_bid(PARAMS, 3, reserve)
    assert ch.balance("bob") == b0 - bob_bid - FEE
    ch.conserved()
    # a bid close to the end extends the auction
    end = start + PARAMS.name_auction_seconds
    ch.at(end - 10).do("alice", T.NAME_BID, name="abc", amount=min_next_bid(PARAMS, 3, bob_bid))
    assert ch.c.state.get_auction("abc").end == end - 10 + PARAMS.name_auction_extend  # type: ignore[union-attr]
    ch.at(end + 1)  # past the original end, before the extended one: bids still count
    top = min_next_bid(PARAMS, 3, min_next_bid(PARAMS, 3, bob_bid))
    ch.do("bob", T.NAME_BID, name="abc", amount=top)
    new_end = ch.c.state.get_auction("abc").end  # type: ignore[union-attr]
    assert new_end == end + 1 + PARAMS.name_auction_extend
    ch.refused("auction_running", "carol", T.NAME_CLAIM, name="abc")
    ch.refused("no_auction", "carol", T.NAME_CLAIM, name="abd")
    ch.at(new_end).refused("auction_over", "alice", T.NAME_BID, name="abc", amount=top * 2)
    burned = ch.c.state.supply.burned
    ch.do("carol", T.NAME_CLAIM, name="abc")  # anyone may settle it; the winner gets the name
    rec = ch.name("abc")
    assert rec is not None and rec.owner == ch.addr["bob"] and rec.expires == new_end + PARAMS.name_year
    assert ch.c.state.supply.burned - burned == top  # the winning bid is burned
    assert ch.c.state.get_auction("abc") is None
    ch.refused("name_taken", "alice", T.NAME_BID, name="abc", amount=top * 2)
    ch.conserved()


def test_raising_ones_own_bid_locks_the_difference() -> None:
    ch = Chain()
    reserve = yearly_fee(PARAMS, 4)
    a0 = ch.balance("alice")
    ch.do("alice", T.NAME_BID, name="abcd", amount=reserve)
    ch.do("alice", T.NAME_BID, name="abcd", amount=2 * reserve)
    assert ch.balance("alice") == a0 - 2 * reserve - 2 * FEE
    ch.conserved()


def test_malformed_name_transactions() -> None:
    ch = Chain()
    for kind, fields in [(T.NAME_COMMIT, {"hash": b"x"}), (T.NAME_REGISTER, {"name": "alice", "salt": b"s" * 65, "years": 1}),
                         (T.NAME_RENEW, {"name": 5, "years": 1}), (T.NAME_RENEW, {"name": "alice", "years": 0}), (T.NAME_TRANSFER, {"name": "alice", "to": b"x"}),
                         (T.NAME_BID, {"name": "abc", "amount": "1"})]:  # fmt: skip
        with pytest.raises(LedgerError) as e:
            decode_tx(ch.raw("alice", kind, **fields))
        assert e.value.code == "malformed"
    with pytest.raises(LedgerError) as e:
        ch.do("alice", T.NAME_BID, name="abc", amount=0)
    assert e.value.code == "bad_amount"


def test_insufficient_funds() -> None:
    ch = Chain()
    ch.refused("insufficient_funds", "alice", T.NAME_BID, name="abc", amount=10**7)
    assert START > 0
