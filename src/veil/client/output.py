"""Where downloaded bytes go: a file written atomically (temp + fsync + rename), or stdout."""

from __future__ import annotations

import os
import sys
import tempfile
from types import TracebackType
from typing import BinaryIO

from veil.errors import UsageError


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it (and put it back)
    os.umask(mask)
    return mask


class AtomicOutput:
    """Write to a hidden temp file beside ``path``; rename over it only on success."""

    def __init__(self, path: str, force: bool = False) -> None:
        self.path = path
        if path != "-":
            if os.path.isdir(path):
                raise UsageError(f"{path} is a directory")
            if os.path.exists(path) and not force:
                raise UsageError(f"{path} exists; use --force to overwrite it")
        self._tmp: str | None = None
        self.f: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.path == "-":
            self.f = sys.stdout.buffer
            return self.f
        d = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=".veil-", suffix=".part", dir=d)
        except OSError as e:
            raise UsageError(f"cannot write to {d}: {e.strerror or e}") from e
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a download gets the user's usual mode
        self.f = os.fdopen(fd, "wb")
        return self.f

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        assert self.f is not None
        if self.path == "-":
            self.f.flush()
            return
        try:
            if et is None:
                self.f.flush()
                os.fsync(self.f.fileno())
            self.f.close()
            if et is None:
                assert self._tmp is not None
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._tmp is not None:
                os.unlink(self._tmp)
