"""DHT message schemas: round trips and strict, bounded decoding at the boundary."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.dht.ids import Contact
from veil.dht.messages import (
    MAX_BATCH_RECORDS,
    MAX_CONTACTS,
    MAX_MESSAGE_SIZE,
    AddProvider,
    AddProviders,
    FindNode,
    FindProviders,
    FindValue,
    Nodes,
    Ping,
    Pong,
    Providers,
    Refused,
    Request,
    Response,
    Stored,
    StoreNode,
    Value,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from veil.errors import IntegrityError
from veil.format import cbor

contacts = st.builds(Contact, st.binary(min_size=32, max_size=32), st.text(min_size=1, max_size=40))
key = st.binary(min_size=32, max_size=32)
sender = st.none() | contacts
record = st.binary(max_size=300)

requests = st.one_of(
    st.builds(Ping, sender),
    st.builds(FindNode, key, sender),
    st.builds(FindValue, key, sender),
    st.builds(FindProviders, key, sender),
    st.builds(AddProvider, record, sender),
    st.builds(AddProviders, st.lists(record, max_size=5).map(tuple), sender),
    st.builds(StoreNode, record, sender),
)
node_lists = st.lists(contacts, max_size=MAX_CONTACTS).map(tuple)
responses = st.one_of(
    st.just(Pong()),
    st.builds(Nodes, node_lists),
    st.builds(Value, st.none() | record, node_lists),
    st.builds(Providers, st.lists(record, max_size=5).map(tuple), node_lists),
    st.builds(Stored, st.booleans()),
    st.builds(Refused, st.sampled_from(["rate_limited", "invalid", "full"])),
)


@given(requests)
def test_request_round_trip(msg: Request) -> None:
    assert decode_request(encode_request(msg)) == msg


@given(responses)
def test_response_round_trip(msg: Response) -> None:
    assert decode_response(encode_response(msg)) == msg


def test_rejects_bad_envelopes_and_fields() -> None:
    good = cbor2.loads(encode_request(FindNode(bytes(32))))
    cases = [
        {**good, "magic": "other"},
        {**good, "v": 2},
        {**good, "v": 1.0},
        {**good, "target": 1.5},
        {**good, "from": [bytes(32), 2.0]},
        {**good, "type": "steal"},
        {**good, "target": bytes(31)},
        {**good, "extra": 1},
        {**good, "from": [bytes(32)]},
        {**good, "from": [bytes(32), ""]},
        {**good, "from": [bytes(32), "x" * 256]},
    ]
    for m in cases:
        with pytest.raises(IntegrityError):
            decode_request(cbor2.dumps(m, canonical=True))
    with pytest.raises(IntegrityError):
        decode_request(b"\x00" * (MAX_MESSAGE_SIZE + 1))
    with pytest.raises(IntegrityError):
        decode_request(b"\xa1")  # truncated CBOR


def test_response_bounds() -> None:
    c = [bytes(32), "a:1"]
    base = {"magic": "veil/dht", "v": 1, "type": "nodes"}
    with pytest.raises(IntegrityError):
        decode_response(cbor.encode({**base, "nodes": [c] * (MAX_CONTACTS + 1)}))
    with pytest.raises(IntegrityError):
        decode_response(cbor.encode({**base, "type": "providers", "nodes": [], "records": [b"x"] * 21}))
    with pytest.raises(IntegrityError):
        decode_response(cbor.encode({**base, "type": "providers", "nodes": [], "records": [b"x" * 2000]}))
    with pytest.raises(IntegrityError):
        decode_response(cbor.encode({**base, "type": "stored", "accepted": 1}))
    with pytest.raises(ValueError):
        encode_response(Providers((b"x" * 1000,) * 40, ()))


def test_add_providers_bounds() -> None:
    base = {"magic": "veil/dht", "v": 1, "type": "add_providers"}
    assert decode_request(cbor.encode({**base, "records": [b"x"] * MAX_BATCH_RECORDS})) == AddProviders(
        (b"x",) * MAX_BATCH_RECORDS
    )
    for bad in ([b"x"] * (MAX_BATCH_RECORDS + 1), [b"x" * 2000], [1], b"x"):
        with pytest.raises(IntegrityError):
            decode_request(cbor.encode({**base, "records": bad}))
