"""Large test files written fast: one random MiB repeated, each copy prefixed with its counter,
so no two MiB are equal (dedup or caching cannot flatter a measurement)."""

from __future__ import annotations

import os
import random
from pathlib import Path

MiB = 1 << 20


def write_test_file(path: Path, size: int, seed: int | None = None) -> Path:
    """``size`` pseudo-random bytes at ``path``; reproducible when ``seed`` is given."""
    block = random.Random(seed).randbytes(MiB) if seed is not None else os.urandom(MiB)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            chunk = i.to_bytes(8, "big") + block[8:]
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
            i += 1
    return path
