"""Channel deposits sized to the expected spend (client/payer.py sized_deposit; payments.md, "Deposits")."""

from __future__ import annotations

from veil.client.payer import HEADROOM, sized_deposit
from veil.ledger.amount import UNIT

GB = 10**9


def test_a_download_locks_about_what_it_will_spend_within_floor_and_cap() -> None:
    price = 1 * UNIT  # 1 VEIL per GB
    per_node = 10_000_000  # a 30 MB file read from k = 3 nodes
    d = sized_deposit(per_node, price, floor=UNIT // 1000, cap=UNIT)
    assert d == -(-(per_node + per_node // HEADROOM) * price // GB)  # 0.01125 VEIL, not 1 VEIL
    assert d < UNIT // 50
    assert sized_deposit(1000, price, floor=UNIT // 1000, cap=UNIT) == UNIT // 1000  # tiny: the floor
    assert sized_deposit(10**12, price, floor=UNIT // 1000, cap=UNIT) == UNIT  # huge: the cap (then top-ups)
    assert sized_deposit(None, price, floor=UNIT // 1000, cap=UNIT) == UNIT  # nothing planned: as before
    assert sized_deposit(0, 0, floor=1, cap=UNIT) == 1  # a free node still needs a deposit > 0
