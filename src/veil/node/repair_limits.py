"""The repairer's settings as `veil node run` takes them: ``--repair-threshold`` and
``--repair-sweep-rate`` parsed, and the share count a threshold means for one file.

Imports from: veil.errors, veil.format.
"""

from __future__ import annotations

from veil.errors import UsageError
from veil.format.manifest import Manifest


def parse_threshold(text: str) -> str | int:
    t = str(text).strip().lower()
    if t in ("happy", "n"):
        return t
    if t.isdigit() and 1 <= int(t) <= 255:
        return int(t)
    raise UsageError(f"bad repair threshold {text!r}: use happy, n, or a share count 1..255")


def parse_sweep_rate(text: str) -> float:
    try:
        r = float(text)
    except ValueError:
        r = -1.0
    if not 0 < r <= 1_000_000:
        raise UsageError(f"bad repair sweep rate {text!r}: give files per minute, more than 0")
    return r


def threshold_for(man: Manifest, threshold: str | int) -> int:
    """Repair when fewer shares than this are healthy (never asks for more than n)."""
    if threshold == "happy":
        return man.happy
    if threshold == "n":
        return man.n
    assert isinstance(threshold, int)
    return max(man.k, min(man.n, threshold))
