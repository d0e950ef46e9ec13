"""Addresses, amounts, and tamper tests for every signed object (tx, cheque, block, wallet)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, LedgerError, UsageError
from veil.ledger import tx as T
from veil.ledger.address import address_of, decode_address, encode_address
from veil.ledger.amount import MAX_AMOUNT, format_amount, parse_amount
from veil.ledger.block import decode_header, make_header, merkle_root
from veil.ledger.cheque import decode_cheque, make_cheque

K = SigningKey(b"\x05" * 32)


@given(st.binary(min_size=32, max_size=32))
def test_address_round_trip(addr: bytes) -> None:
    text = encode_address(addr)
    assert text.startswith("vb1")
    assert decode_address(text) == addr
    assert decode_address(text.upper()) == addr


def test_address_checksum_catches_typos() -> None:
    text = encode_address(address_of(K.public_key))
    for i in range(3, len(text)):
        c = "a" if text[i] != "a" else "b"
        with pytest.raises(UsageError):
            decode_address(text[:i] + c + text[i + 1 :])
    with pytest.raises(UsageError):
        decode_address(text[:-1])


@given(st.integers(0, MAX_AMOUNT))
def test_amount_round_trip(v: int) -> None:
    assert parse_amount(format_amount(v)) == v


@pytest.mark.parametrize("bad", ["", ".", "-1", "1e5", "1.0000000001", "0x10", "1.2.3", "nan", "9223372037", "１"])
def test_bad_amounts(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_amount(bad)


def test_amount_examples() -> None:
    assert parse_amount("12.5") == 12_500_000_000
    assert parse_amount("0.000000001") == 1
    assert format_amount(1) == "0.000000001"
    assert format_amount(10**9) == "1"


def _flip_each(raw: bytes) -> list[bytes]:
    out = []
    for i in range(len(raw)):
        b = bytearray(raw)
        b[i] ^= 0x01
        out.append(bytes(b))
    return out


def test_tx_tamper_every_byte() -> None:
    raw = T.transfer(K, "c", 3, 1, b"\x01" * 32, 77, "hi")
    assert T.decode_tx(raw).txid == T.tx_id(raw)
    for bad in _flip_each(raw):
        try:
            t = T.decode_tx(bad)
        except LedgerError as e:
            assert e.code in ("malformed", "bad_amount", "oversized")
            continue
        with pytest.raises(LedgerError) as ei:
            t.verify_signature()
        assert ei.value.code == "bad_signature"


def test_cheque_tamper_every_byte() -> None:
    c = make_cheque(K, "c", b"\x02" * 32, 4, 1000, 5, 6, {b"\x03" * 32: 10})
    c.verify(K.public_key)
    assert decode_cheque(c.raw) == c
    for bad in _flip_each(c.raw):
        try:
            d = decode_cheque(bad)
        except LedgerError:
            continue
        with pytest.raises(LedgerError):
            d.verify(K.public_key)


def test_block_header_tamper_every_byte() -> None:
    from veil.ledger.state import Validator, ValidatorSet

    vset = ValidatorSet(1, (Validator(K.public_key, "127.0.0.1:1", "127.0.0.1:2"),))
    h = make_header("c", 7, b"\x09" * 32, 123, [b"\x01" * 32, b"\x02" * 32, b"\x03" * 32], b"\x04" * 32, vset.hash)
    sig = h.sign(K)
    assert h.check_certificate(vset, [(K.public_key, sig)]) == 1
    assert h.txroot == merkle_root([b"\x01" * 32, b"\x02" * 32, b"\x03" * 32])
    for bad in _flip_each(h.raw):
        try:
            d = decode_header(bad)
        except LedgerError:
            continue
        with pytest.raises(LedgerError):
            d.check_certificate(vset, [(K.public_key, sig)])


def test_merkle_root_binds_order_and_count() -> None:
    a, b, c = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    roots = {merkle_root(x) for x in ([], [a], [a, b], [b, a], [a, b, c], [a, b, c, c])}
    assert len(roots) == 6


def test_wallet_file(tmp_path: Path) -> None:
    from veil.client.wallet import create_wallet, open_wallet, wallet_address

    p = tmp_path / "w"
    w = create_wallet(p, "correct horse", m_cost_kib=1024)
    assert open_wallet(p, "correct horse").key.seed == w.key.seed
    assert wallet_address(p) == w.address
    with pytest.raises(IntegrityError):
        open_wallet(p, "wrong")
    with pytest.raises(UsageError):
        create_wallet(p, "again", m_cost_kib=1024)
    raw = p.read_bytes()
    for i in (0, 9, 12, 50, len(raw) - 1):  # magic, public key, header, ciphertext, tag
        b = bytearray(raw)
        b[i] ^= 1
        p.write_bytes(bytes(b))
        with pytest.raises(IntegrityError):
            open_wallet(p, "correct horse")
