"""The gateway's spending rules (gateway/budget.py) over a manual clock: price ceiling, budgets
per visitor and per file, windows, and the bound on how many keys are kept."""

from __future__ import annotations

import pytest

from veil.client.payer import BudgetError
from veil.gateway import budget as b
from veil.ledger.params import GB
from veil.protocol import payments as pay
from veil.testing.clock import ManualClock


def terms(price: int) -> pay.Terms:
    return pay.Terms(bytes(32), "c", price, 0, 0, 0, bytes(32))


def test_price_ceiling_refuses_greedy_nodes_but_not_free_bytes() -> None:
    s = b.SpendBudgets(b.SpendRules(max_price_per_gb=2 * GB))
    g = s.guard("1.2.3.4", bytes(16))
    g(0, terms(10**6 * GB))  # nothing to pay: free bytes are not priced
    g(100, terms(2 * GB))
    with pytest.raises(BudgetError, match="more than this gateway pays"):
        g(1, terms(2 * GB + 1))


def test_budgets_per_visitor_and_per_file_and_their_window() -> None:
    clock = ManualClock()
    s = b.SpendBudgets(b.SpendRules(per_visitor=100, per_file=150, window=60), clock=clock)
    s.guard("a", b"f" * 16)(100, terms(1))
    with pytest.raises(BudgetError, match="your download budget"):
        s.guard("a", b"g" * 16)(1, terms(1))
    s.guard("b", b"f" * 16)(50, terms(1))
    with pytest.raises(BudgetError, match="this file's download budget"):
        s.guard("c", b"f" * 16)(1, terms(1))
    # A refused payment was not counted: "c" still has its whole budget for another file.
    s.guard("c", b"h" * 16)(100, terms(1))
    clock.advance(60)
    s.guard("a", b"f" * 16)(100, terms(1))


def test_books_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(b, "MAX_KEYS", 10)
    s = b.SpendBudgets(b.SpendRules(per_visitor=5))
    for i in range(50):
        s.guard(str(i), bytes(16))(1, terms(1))
    assert s._visitors is not None and len(s._visitors._spent) == 10
