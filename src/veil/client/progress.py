"""Progress reporting without a UI dependency: the CLI passes a callback, tests pass none."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int], None]  # called with the number of plaintext bytes just done


def nothing(_: int) -> None:
    pass
