"""A manual clock for tests and simulations: time moves only when told to."""

from __future__ import annotations


class ManualClock:
    """Seconds as a float, like ``time.time()``; ``advance`` and ``set`` move it forward only."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    __call__ = now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        return self._now

    def set(self, t: float) -> None:
        if t < self._now:
            raise ValueError("time does not go backwards")
        self._now = float(t)
