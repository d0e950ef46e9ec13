"""The client's side of storage admission over the in-memory grid (client/tickets.py): uploads,
one-shot and streaming, repair and the gateway's browser uploads send a fresh storage ticket to
nodes that want one, unlock the key only when a node first asks, and fail with a clear payment
error when they cannot sign."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from veil.client.check import check
from veil.client.repair import repair
from veil.client.tickets import Tickets
from veil.client.upload import SMALL_FILE, upload
from veil.client.wallet import Wallet
from veil.crypto.sign import SigningKey
from veil.errors import PaymentRequiredError, UsageError
from veil.gateway.app import Gateway, GatewayConfig
from veil.gateway.pay import GatewayWallet
from veil.protocol.tickets import parse_ticket
from veil.testing.grid import Grid

KEY = SigningKey(bytes([5]) * 32)


def _grid(tmp_path: Path, needs: bool = True) -> Grid:
    g = Grid(tmp_path, 6)
    for n in g.nodes:
        n.needs_ticket = needs
    return g


def test_uploads_sign_a_fresh_ticket_per_request_once_a_node_asks(tmp_path: Path) -> None:
    g = _grid(tmp_path)
    unlocked = []

    def source() -> SigningKey:
        unlocked.append(1)
        return KEY

    net = g.network()
    net.tickets = Tickets(source)
    small = os.urandom(50_000)
    res = upload(net, io.BytesIO(small), len(small), "s.bin", k=2, n=6, happy=6)
    assert len(unlocked) == 1 and net.tickets.wanted
    big = os.urandom(SMALL_FILE + 100_000)
    res2 = upload(net, io.BytesIO(big), len(big), "b.bin", k=2, n=6, happy=6, segment_size=256 * 1024)
    for r in (res, res2):
        assert len(r.placement) == 6
    tickets = [parse_ticket(t) for n in g.nodes for t in n.tickets]
    assert len(tickets) == 12  # one per share per file, each for the node it was sent to
    assert len({t.nonce for t in tickets}) == 12
    assert {t.account for t in tickets} == {KEY.public_key}
    assert {t.si for t in tickets} == {res.manifest.si, res2.manifest.si}
    g.close()


def test_open_nodes_never_unlock_the_key(tmp_path: Path) -> None:
    g = _grid(tmp_path, needs=False)
    net = g.network()

    def source() -> SigningKey:
        raise AssertionError("the key was unlocked for nodes that do not ask")

    net.tickets = Tickets(source)
    data = os.urandom(10_000)
    upload(net, io.BytesIO(data), len(data), "f.bin", k=2, n=6)
    assert all(not n.tickets for n in g.nodes)
    g.close()


def test_an_upload_that_cannot_sign_fails_with_a_payment_error(tmp_path: Path) -> None:
    g = _grid(tmp_path)
    data = os.urandom(10_000)
    with pytest.raises(PaymentRequiredError, match="storage ticket"):
        upload(g.network(), io.BytesIO(data), len(data), "f.bin", k=2, n=6)
    net = g.network()

    asked = []

    def no_wallet() -> SigningKey:
        asked.append(1)
        raise UsageError("no wallet at /nowhere: create one with `veil wallet create`")

    net.tickets = Tickets(no_wallet)
    with pytest.raises(PaymentRequiredError, match="no wallet"):
        upload(net, io.BytesIO(data), len(data), "f.bin", k=2, n=6)
    assert len(asked) == 1  # asked once (one passphrase prompt), not once per node
    assert all(n.store.usage()["shares"] == 0 for n in g.nodes)
    g.close()


def test_repair_sends_tickets_to_the_new_holders(tmp_path: Path) -> None:
    g = _grid(tmp_path)
    net = g.network()
    net.tickets = Tickets.of_key(KEY)
    data = os.urandom(300_000)
    res = upload(net, io.BytesIO(data), len(data), "f.bin", k=2, n=4, happy=4)
    holder = g.node(res.placement[0])
    g.wipe(holder)
    g.add_node().needs_ticket = True
    fresh = g.network()
    fresh.tickets = Tickets.of_key(KEY)
    vcap = res.cap.verify_cap()
    before = sum(len(n.tickets) for n in g.nodes)
    out = repair(fresh, vcap)
    assert out.healthy_after == 4
    assert sum(len(n.tickets) for n in g.nodes) == before + len(out.placed)
    assert check(fresh, vcap).healthy
    g.close()


def test_the_gateway_signs_its_browser_uploads_with_its_wallet(tmp_path: Path) -> None:
    g = _grid(tmp_path)
    wallet = GatewayWallet(Wallet(tmp_path / "gw.wallet", KEY), max_spend=1, deposit=1)
    gw = Gateway(GatewayConfig(network=g.network(), wallet=wallet, k=2, n=6))
    s = gw.uploads.begin("t", os.urandom(16), 100_000, 64 * 1024, 2, 6, 6, os.urandom(200))
    assert sorted(parse_ticket(t).account for n in g.nodes for t in n.tickets) == [KEY.public_key] * 6
    s.uploader.abort()
    g.close()
