"""What the gateway is willing to pay storage nodes, per visitor and per file (docs/specs/gateway.md).

A gateway pays for anonymous visitors, so without limits one hostile charging node holding a
file's shares could take its whole ``--max-spend`` with a few requests. Three rules, checked
before every cheque is signed (``Payer.fetch``'s guard):

- a **price ceiling** (``--max-price-per-gb``): a node asking more is not paid at all; the
  fetcher moves to another holder;
- a **budget per visitor** (``--visitor-budget``, keyed by the client's IP address) and a
  **budget per file** (``--file-budget``, keyed by storage index), each per ``window`` seconds
  (a day). A request over a budget is refused with 402 and says which budget.

The books are bounded (``MAX_KEYS`` visitors and files each, oldest window dropped first) and
sans-I/O: the clock is injected.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from veil.client.payer import BudgetError, Guard, PriceCeilingError
from veil.ledger.amount import format_amount
from veil.protocol import payments as pay

WINDOW = 86_400.0
MAX_KEYS = 10_000


@dataclass(frozen=True)
class SpendRules:
    max_price_per_gb: int | None = None  # None: any price (up to the budgets)
    per_visitor: int | None = None  # units per window; None: no per-visitor budget
    per_file: int | None = None
    window: float = WINDOW


class _Book:
    """Money spent per key in the current window."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._spent: OrderedDict[object, tuple[float, int]] = OrderedDict()

    def room(self, key: object, now: float) -> int:
        start, spent = self._spent.get(key, (now, 0))
        if now - start >= self.window:
            spent = 0
        return self.limit - spent

    def add(self, key: object, amount: int, now: float) -> None:
        start, spent = self._spent.pop(key, (now, 0))
        if now - start >= self.window:
            start, spent = now, 0
        self._spent[key] = (start, spent + amount)
        while len(self._spent) > MAX_KEYS:
            self._spent.popitem(last=False)


class SpendBudgets:
    def __init__(self, rules: SpendRules, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._visitors = _Book(rules.per_visitor, rules.window) if rules.per_visitor is not None else None
        self._files = _Book(rules.per_file, rules.window) if rules.per_file is not None else None

    def guard(self, visitor: str, si: bytes) -> Guard:
        """The check for one visitor's download of one file."""

        def check(amount: int, terms: pay.Terms) -> None:
            if amount <= 0:
                return
            ceiling = self.rules.max_price_per_gb
            if ceiling is not None and terms.price_per_gb > ceiling:
                raise PriceCeilingError(f"a node holding this file asks {format_amount(terms.price_per_gb)} VEIL per GB, "
                                  f"more than this gateway pays ({format_amount(ceiling)})")  # fmt: skip
            self.reserve(visitor, si, amount)

        return check

    def reserve(self, visitor: str, si: bytes, amount: int) -> None:
        now = self._clock()
        with self._lock:
            for book, key, what in ((self._visitors, visitor, "your"), (self._files, si, "this file's")):
                if book is not None and amount > book.room(key, now):
                    raise BudgetError(f"this gateway has spent {what} download budget for today "
                                      f"({format_amount(book.limit)} VEIL); try again later")  # fmt: skip
            for book, key in ((self._visitors, visitor), (self._files, si)):
                if book is not None:
                    book.add(key, amount, now)
