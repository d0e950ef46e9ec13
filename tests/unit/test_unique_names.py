"""pytest imports test modules by basename (rootdir-relative, no packages): two test files with
the same name in different folders break collection of the whole suite. Catch it early."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "conftest.py" and p.name != "__init__.py")
    assert not [n for n, c in names.items() if c > 1]
