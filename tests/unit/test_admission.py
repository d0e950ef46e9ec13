"""Storage tickets (protocol/tickets.py) and the quota book (storage/admission.py): tamper tests
on every ticket byte, node/index/expiry binding, holds, charges once, refunds on delete."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, PaymentRequiredError
from veil.ledger.address import address_of
from veil.protocol.tickets import MAX_TICKET_LIFE, check_ticket, make_ticket, parse_ticket
from veil.storage.admission import Admission
from veil.storage.store import ShareStore
from veil.testing.clock import ManualClock
from veil.testing.shares import fake_file

NODE = bytes([7]) * 32
SI = bytes(range(16))
KEY = SigningKey(bytes([3]) * 32)


def test_ticket_round_trip_and_binding() -> None:
    now = 1_700_000_000
    t = parse_ticket(make_ticket(KEY, NODE, SI, now + 600))
    assert (t.account, t.node, t.si, t.expires) == (KEY.public_key, NODE, SI, now + 600)
    check_ticket(t, NODE, SI, now)
    for node, si, at in ((bytes(32), SI, now), (NODE, bytes(16), now), (NODE, SI, now + 600)):
        with pytest.raises(IntegrityError):
            check_ticket(t, node, si, at)
    with pytest.raises(IntegrityError):
        check_ticket(parse_ticket(make_ticket(KEY, NODE, SI, now + MAX_TICKET_LIFE + 1)), NODE, SI, now)


def test_every_flipped_ticket_byte_is_refused() -> None:
    raw = base64.urlsafe_b64decode(make_ticket(KEY, NODE, SI, 2_000_000_000) + "==")
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            parse_ticket(base64.urlsafe_b64encode(bytes(bad)).decode())
    with pytest.raises(IntegrityError):
        parse_ticket("not base64 !!")
    with pytest.raises(IntegrityError):
        parse_ticket("A" * 1000)


def test_quota_holds_charges_and_refunds(tmp_path: Path) -> None:
    clock = ManualClock()
    alive: set[str] = set()
    quotas = {address_of(KEY.public_key): 10_000}
    adm = Admission(tmp_path / "c.sqlite", NODE, lambda a: quotas.get(a, 0), alive.__contains__, clock)
    def ticket() -> str:
        return make_ticket(KEY, NODE, SI, int(clock()) + 600)

    with pytest.raises(PaymentRequiredError):
        adm.admit(None, SI, 10)
    with pytest.raises(PaymentRequiredError):  # an account without stake has no quota
        adm.admit(make_ticket(SigningKey(bytes([4]) * 32), NODE, SI, int(clock()) + 600), SI, 10)
    h1 = adm.admit(ticket(), SI, 6000)
    adm.bind(h1, "u1")
    alive.add("u1")
    with pytest.raises(PaymentRequiredError):  # the upload in progress counts
        adm.admit(ticket(), SI, 6000)
    adm.charge(h1, SI, bytes(32), 0)
    adm.charge(h1, SI, bytes(32), 0)  # the same share again: charged once
    assert adm.used(address_of(KEY.public_key)) == 6000
    with pytest.raises(PaymentRequiredError):
        adm.admit(ticket(), SI, 6000)
    h2 = adm.admit(ticket(), SI, 4000)
    adm.bind(h2, "u2")  # never alive: a reaped session's hold is dropped at the next admission
    used = ticket()
    adm.admit(used, SI, 4000)
    with pytest.raises(IntegrityError, match="used already"):  # a replayed ticket
        adm.admit(used, SI, 1)
    adm.refund(SI, bytes(32), 0)
    assert adm.used(address_of(KEY.public_key)) == 0
    adm.close()
    adm2 = Admission(tmp_path / "c.sqlite", NODE, lambda a: 1, alive.__contains__, clock)
    assert adm2.used(address_of(KEY.public_key)) == 0


def test_deleting_a_share_refunds_it(tmp_path: Path) -> None:
    store = ShareStore(tmp_path / "s", reap_interval=0)
    adm = Admission(tmp_path / "c.sqlite", NODE, lambda a: 1 << 30, store.sessions.alive, ManualClock())
    store.on_delete = adm.refund
    sh = fake_file(SI)[0]
    h = adm.admit(make_ticket(KEY, NODE, SI, int(ManualClock()()) + 60), SI, 5000)
    store.put_oneshot(SI, 0, sh.oneshot())
    adm.charge(h, SI, sh.mhash, 0)
    assert adm.used(address_of(KEY.public_key)) == 5000
    store.delete_share(SI, sh.mhash, 0)
    assert adm.used(address_of(KEY.public_key)) == 0
