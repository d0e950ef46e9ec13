"""Ledger rules: every rejection the issue lists, channel lifecycle, allowance and uploader
shares, and Hypothesis runs of random valid/invalid transactions (supply constant, replay
reaches the same state hash)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.format import cbor
from veil.ledger import tx as T
from veil.ledger.address import address_of
from veil.ledger.cheque import make_cheque
from veil.ledger.params import GB, Params
from veil.ledger.state import CLOSING, channel_id
from veil.testing.ledger import MemoryChain

PARAMS = Params(chain_id="test-chain", allowance_bytes=10 * GB, epoch_seconds=1000, price_per_gb=1000, uploader_share_bp=2500,
                min_fee=1, challenge_seconds=50)  # fmt: skip
KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
A, B, C, D = (address_of(k.public_key) for k in KEYS)
START = 10**12


SPONSOR = SigningKey(b"\x55" * 32)  # stakes for payers and bonds nodes, as an onboarding service would
E = address_of(SPONSOR.public_key)


def chain() -> MemoryChain:
    return MemoryChain.create(PARAMS, {A: START, B: START, C: START, E: START}, pool=10**9)


CHAIN = chain().genesis.chain  # the chain id: the genesis hash


def stake_and_register(ch: MemoryChain, payer: SigningKey, node: SigningKey) -> None:
    """The payer stakes for its full allowance; the node is registered and bonded by its operator."""
    from veil.ledger.rules_stake import node_registration_message

    op = SPONSOR
    ch.submit(T.stake(op, CHAIN, ch.nonce(E), 1, PARAMS.allowance_stake, address_of(payer.public_key)))
    proof = node.sign(node_registration_message(CHAIN, address_of(op.public_key)))
    ch.submit(T.node_register(op, CHAIN, ch.nonce(address_of(op.public_key)), 1, node.public_key, PARAMS.min_node_bond, proof))


def send(ch: MemoryChain, k: SigningKey, to: bytes, amount: int, fee: int = 1) -> T.Tx:
    return ch.submit(T.transfer(k, CHAIN, ch.nonce(address_of(k.public_key)), fee, to, amount))


def rejected(ch: MemoryChain, raw: bytes, code: str) -> None:
    before = (dict(ch._open.accounts), dict(ch._open.channels), ch._open.supply)
    with pytest.raises(LedgerError) as e:
        ch.submit(raw)
    assert e.value.code == code, str(e.value)
    assert (dict(ch._open.accounts), dict(ch._open.channels), ch._open.supply) == before


def test_transfer_moves_money_and_fee() -> None:
    ch = chain()
    send(ch, KEYS[0], D, 500, fee=3)
    pool = ch._open.get_supply().pool
    assert ch.account(A).balance == START - 503
    assert ch.account(D).balance == 500
    assert pool == 10**9 + 3  # fees go to the allowance pool
    ch.seal()
    r = ch.replay()
    r.check_supply()
    assert r.state.state_hash == ch.state.state_hash


def test_rejections_change_nothing() -> None:
    ch = chain()
    k = KEYS[0]
    rejected(ch, T.transfer(k, "other-chain", 0, 1, B, 5), "wrong_chain")
    rejected(ch, T.transfer(k, CHAIN, 1, 1, B, 5), "bad_nonce")  # gap
    send(ch, k, B, 5)
    rejected(ch, T.transfer(k, CHAIN, 0, 1, B, 5), "bad_nonce")  # replay
    rejected(ch, T.transfer(k, CHAIN, 1, 1, B, START), "insufficient_funds")
    rejected(ch, T.transfer(KEYS[3], CHAIN, 0, 1, B, 1), "insufficient_funds")  # no account
    rejected(ch, T.transfer(k, CHAIN, 1, 0, B, 5), "fee_too_low")
    for bad in (0, -1, 2**63, 2**64 - 1):
        rejected(ch, T.build_tx(k, CHAIN, T.TRANSFER, 1, 1, to=B, amount=bad), "bad_amount")
    raw = bytearray(T.transfer(k, CHAIN, 1, 1, B, 5))
    raw[-5] ^= 1
    rejected(ch, bytes(raw), "bad_signature")
    rejected(ch, b"\xa1\x61x\x01", "malformed")
    rejected(ch, cbor.encode(["veil-tx", 1, b"\x00" * 8000, b"\x00" * 64]), "oversized")
    rejected(ch, cbor.encode(["veil-tx", 2, cbor.encode({}), b"\x00" * 64]), "malformed")
    rejected(ch, T.channel_topup(k, CHAIN, 1, 1, b"\x07" * 32, 5), "unknown_channel")
    # A mint is not a transaction type: money is created only in genesis.
    body = cbor.encode({"chain": CHAIN, "type": "mint", "pub": k.public_key, "nonce": 1, "fee": 1, "amount": 10})
    rejected(ch, cbor.encode(["veil-tx", 1, body, k.sign(body)]), "malformed")


def test_non_canonical_cbor_is_malformed() -> None:
    ch = chain()
    raw = T.transfer(KEYS[0], CHAIN, 0, 1, B, 5)
    # Re-encode the outer array with a non-minimal length for the version integer.
    outer = cbor.decode(raw, 10_000)
    body = bytes([0x84, 0x67]) + b"veil-tx" + bytes([0x18, 0x01]) + cbor.encode(outer[2]) + cbor.encode(outer[3])
    rejected(ch, body, "malformed")


def open_channel(ch: MemoryChain, payer: SigningKey, payee: bytes, deposit: int, life: int = 100) -> bytes:
    nonce = ch.nonce(address_of(payer.public_key))
    ch.submit(T.channel_open(payer, CHAIN, nonce, 1, payee, deposit, ch.now + life))
    return channel_id(address_of(payer.public_key), nonce)


def test_channel_settlement_free_paid_and_uploader_share() -> None:
    ch = chain()
    stake_and_register(ch, KEYS[0], KEYS[1])
    cid = open_channel(ch, KEYS[0], B, 10_000)
    assert ch.account(A).balance == START - 10_001
    c1 = make_cheque(KEYS[0], CHAIN, cid, 1, 1000, free_bytes=2 * GB, paid_bytes=GB, uploaders={C: 800})
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 0, 1, cid, c1, close=False))
    # Payee: 1000 paid - 25% of 800 to the uploader = 800; free 2 GB at 1000/GB from the pool = 2000.
    assert ch.account(B).balance == START + 800 + 2000 - 1
    assert ch.account(C).balance == START + 200
    assert ch.account(A).used == 2 * GB
    assert ch.channel(cid) is not None and ch.channel(cid).deposit == 9000  # type: ignore[union-attr]
    # A later cheque settles only the difference; an older one is stale.
    rejected(ch, T.channel_settle(KEYS[1], CHAIN, 1, 1, cid, c1, close=False), "stale_cheque")
    c2 = make_cheque(KEYS[0], CHAIN, cid, 5, 3000, free_bytes=20 * GB, paid_bytes=3 * GB, uploaders={C: 2800})
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 1, 1, cid, c2, close=True))
    # Uploader: 25% of 2800 = 700 in all (500 new); payee gets the other 1500 of the 2000 new; free capped at
    # the 8 GB of allowance left -> 8000 from the pool. Deposit rest (7000) back to the payer.
    assert ch.account(C).balance == START + 700
    assert ch.account(B).balance == START + 800 + 2000 - 1 + 1500 + 8000 - 1
    assert ch.account(A).balance == START - 10_001 + 7000
    assert ch.account(A).used == 10 * GB
    assert ch.channel(cid) is None
    ch.seal()
    r = ch.replay()
    r.check_supply()
    assert r.state.get_supply().pool == 10**9 - 10_000 + 5  # plus the five fees of this test


def test_cheque_rules_on_ledger() -> None:
    ch = chain()
    cid = open_channel(ch, KEYS[0], B, 1000)
    n = 0

    def settle(c: object, code: str, signer: SigningKey = KEYS[1]) -> None:
        rejected(ch, T.channel_settle(signer, CHAIN, n, 1, cid, c, close=False), code)  # type: ignore[arg-type]

    settle(make_cheque(KEYS[0], CHAIN, cid, 1, 1001), "cheque_over_deposit")
    settle(make_cheque(KEYS[2], CHAIN, cid, 1, 10), "bad_signature")  # not signed by the payer
    settle(make_cheque(KEYS[0], "other", cid, 1, 10), "wrong_chain")
    settle(make_cheque(KEYS[0], CHAIN, cid, 1, 10, uploaders={A: 10}), "self_reward")
    rejected(ch, T.channel_settle(KEYS[2], CHAIN, 0, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 1, 10), False), "not_channel_party")
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 0, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 3, 100, uploaders={C: 100}), False))
    n = 1
    settle(make_cheque(KEYS[0], CHAIN, cid, 3, 200), "stale_cheque")
    settle(make_cheque(KEYS[0], CHAIN, cid, 4, 50), "cheque_decreasing")
    settle(make_cheque(KEYS[0], CHAIN, cid, 4, 200, uploaders={D: 100}), "cheque_decreasing")  # dropped C


def test_unilateral_close_challenge_and_finalize() -> None:
    ch = chain()
    cid = open_channel(ch, KEYS[0], B, 1000, life=100)
    ch.seal()
    rejected(ch, T.channel_close_start(KEYS[0], CHAIN, 1, 1, cid), "not_expired")
    ch.now += 100
    rejected(ch, T.channel_close_start(KEYS[1], CHAIN, 0, 1, cid), "not_channel_party")
    ch.submit(T.channel_close_start(KEYS[0], CHAIN, 1, 1, cid))
    assert ch.channel(cid).status == CLOSING  # type: ignore[union-attr]
    rejected(ch, T.channel_topup(KEYS[0], CHAIN, 2, 1, cid, 5), "channel_closing")
    rejected(ch, T.channel_finalize(KEYS[0], CHAIN, 2, 1, cid), "challenge_open")
    ch.seal()
    # In the window the payee settles a later cheque; then the payer finalizes the rest.
    ch.now += 10
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 0, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 9, 300), False))
    ch.seal()
    ch.now += 40
    ch.submit(T.channel_finalize(KEYS[0], CHAIN, 2, 1, cid))
    assert ch.account(A).balance == START - 1000 - 3 + 700
    assert ch.account(B).balance == START + 300 - 1
    ch.seal()
    ch.replay().check_supply()


def test_allowance_renews_each_epoch() -> None:
    ch = chain()
    stake_and_register(ch, KEYS[0], KEYS[1])
    cid = open_channel(ch, KEYS[0], B, 1000, life=10_000)
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 0, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 1, 0, free_bytes=15 * GB), False))
    assert ch.account(A).used == 10 * GB
    ch.seal()
    ch.now += PARAMS.epoch_seconds
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 1, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 2, 0, free_bytes=18 * GB), False))
    assert ch.account(A).used == 3 * GB
    assert ch.account(B).balance == START - 2 + 13 * 1000


# -- Hypothesis: random valid and invalid transactions -------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(["send", "open", "topup", "settle", "close_start", "finalize", "tick", "seal", "garbage"]),
        st.integers(0, 3), st.integers(0, 3), st.integers(-5, 3 * START), st.integers(0, 5), st.booleans(),
    ),
    max_size=40,
)  # fmt: skip


@given(ops)
def test_random_sequences_keep_supply_and_replay(seq: list[tuple[str, int, int, int, int, bool]]) -> None:
    ch = chain()
    chans: list[tuple[bytes, int, int]] = []  # (id, payer index, payee index)
    cheque_seq = 1
    for op, i, j, amount, nonce_skew, flag in seq:
        k = KEYS[i]
        me = address_of(k.public_key)
        nonce = ch.nonce(me) + (nonce_skew if nonce_skew > 3 else 0) - (1 if nonce_skew == 5 else 0)
        raw: bytes
        if op == "send":
            raw = T.build_tx(k, CHAIN, T.TRANSFER, nonce, 1, to=address_of(KEYS[j].public_key), amount=amount)
        elif op == "open":
            raw = T.build_tx(k, CHAIN, T.CHANNEL_OPEN, nonce, 1, payee=address_of(KEYS[j].public_key),
                             deposit=amount, expires=ch.now + 20 * (nonce_skew + 1))  # fmt: skip
        elif op in ("topup", "settle", "close_start", "finalize") and chans:
            cid, payer, payee = chans[j % len(chans)]
            if op == "topup":
                raw = T.build_tx(k, CHAIN, T.CHANNEL_TOPUP, nonce, 1, channel=cid, amount=amount)
            elif op == "settle":
                cheque_seq += 1
                c = make_cheque(KEYS[payer], CHAIN, cid, cheque_seq, max(0, amount) % 5000,
                                free_bytes=abs(amount) % (3 * GB), uploaders={D: min(max(0, amount) % 2000, max(0, amount) % 5000)} if payer != 3 else {})  # fmt: skip
                signer = KEYS[payee] if i < 3 else k  # mostly the payee, sometimes a stranger
                raw = T.channel_settle(signer, CHAIN, ch.nonce(address_of(signer.public_key)), 1, cid, c, flag)
            elif op == "close_start":
                raw = T.channel_close_start(k, CHAIN, nonce, 1, cid)
            else:
                raw = T.channel_finalize(k, CHAIN, nonce, 1, cid)
        elif op == "tick":
            ch.now += 10 * (nonce_skew + 1)
            continue
        elif op == "seal":
            ch.seal()
            continue
        else:
            raw = bytes([amount % 256]) * (nonce_skew + 1)
        try:
            t = ch.submit(raw)
        except LedgerError:
            continue
        if t.kind == T.CHANNEL_OPEN:
            chans.append((channel_id(t.sender, t.nonce), i, j))
    ch.seal()
    r = ch.replay()
    r.check_supply()
    assert r.state.state_hash == ch.state.state_hash
    assert r.state.total_held() == ch.genesis.minted


def test_free_tier_needs_stake_and_a_bonded_payee() -> None:
    """Issue 19 item 1: without stake there is no allowance; an unregistered payee gets nothing
    from the pool; a bonded node gets at most its share of the epoch budget."""
    ch = chain()
    cid = open_channel(ch, KEYS[0], B, 1000, life=10_000)
    pool = ch._open.get_supply().pool
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 0, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 1, 0, free_bytes=5 * GB), False))
    assert ch.account(A).used == 0  # no stake: no allowance to charge
    assert ch._open.get_supply().pool == pool + 1  # only the fee came in; nothing went out
    stake_and_register(ch, KEYS[0], KEYS[1])
    ch.submit(T.channel_settle(KEYS[1], CHAIN, 1, 1, cid, make_cheque(KEYS[0], CHAIN, cid, 2, 0, free_bytes=9 * GB), False))
    assert ch.account(A).used == 4 * GB  # 4 new free GB charged to the staked payer
    reg = ch._open.get_node(B)
    assert reg is not None and reg.pool_paid == 4 * 1000


def test_free_tier_channel_needs_no_deposit_and_no_fee() -> None:
    """A downloader with no funds but a (sponsored) stake opens free-tier channels, boundedly."""
    poor = SigningKey(b"\x44" * 32)
    ch = chain()
    stake_and_register(ch, poor, KEYS[1])
    assert ch.account(address_of(poor.public_key)).balance == 0
    for i in range(PARAMS.free_opens_per_epoch):
        ch.submit(T.channel_open(poor, CHAIN, i, 0, B, 0, ch.now + 100))
    rejected(ch, T.channel_open(poor, CHAIN, PARAMS.free_opens_per_epoch, 0, B, 0, ch.now + 100), "fee_too_low")
    rejected(ch, T.channel_open(KEYS[3], CHAIN, 0, 0, B, 0, ch.now + 100), "insufficient_funds")


def test_unstake_waits_for_the_unbonding_period() -> None:
    ch = chain()
    ch.submit(T.stake(KEYS[0], CHAIN, 0, 1, 500))
    ch.submit(T.unstake(KEYS[0], CHAIN, 1, 1, 200))
    rejected(ch, T.withdraw(KEYS[0], CHAIN, 2, 1), "not_expired")
    ch.seal()
    ch.now += PARAMS.unbond_seconds
    ch.submit(T.withdraw(KEYS[0], CHAIN, 2, 1))
    a = ch.account(A)
    assert (a.stake, a.unbonding, a.balance) == (300, 0, START - 500 + 200 - 3)
    ch.seal()
    ch.replay().check_supply()
