"""Where downloaded bytes go: a file written atomically (temp + fsync + rename), or stdout.

A whole-file download to a path is **resumable**: it is written to ``.NAME.veil-part`` beside
the target, with a journal ``.NAME.veil-part.json`` naming the file (a hash of its cap) and how
many bytes of it are on disk and verified (every byte written was authenticated by its segment's
AEAD tag before it reached the file). The journal is rewritten after each ``CHECKPOINT`` bytes,
only after the data before it was fsynced, so a crash or kill -9 leaves a journal that never
claims more than is on disk. Run again for the same cap, the download truncates the part file to
the journal's count and fetches only the rest; an interrupted run keeps both files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from types import TracebackType
from typing import Any, BinaryIO, cast

from veil.durable import write_atomic
from veil.errors import UsageError

CHECKPOINT = 4 << 20


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it (and put it back)
    os.umask(mask)
    return mask


class _Checkpointed:
    """A file that records, every CHECKPOINT bytes, how much of it is durable."""

    def __init__(self, f: BinaryIO, journal: str, ident: str, offset: int) -> None:
        self.f, self.journal, self.ident = f, journal, ident
        self.done = self.synced = offset

    def write(self, data: Any) -> int:
        n = self.f.write(data)
        self.done += n
        if self.done - self.synced >= CHECKPOINT:
            self.checkpoint()
        return n

    def checkpoint(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        write_atomic_json(self.journal, {"v": 1, "file": self.ident, "verified": self.done})
        self.synced = self.done

    def flush(self) -> None:
        self.f.flush()

    def fileno(self) -> int:
        return self.f.fileno()


def write_atomic_json(path: str, value: dict[str, Any]) -> None:
    from pathlib import Path

    write_atomic(Path(path), json.dumps(value).encode(), mode=0o600)


class AtomicOutput:
    """Write to a hidden temp file beside ``path``; rename over it only on success.

    With ``resume`` (an id of the file being downloaded), the temp file is the resumable part
    file described above; ``offset`` is then how many bytes an earlier run left verified."""

    def __init__(self, path: str, force: bool = False, resume: str | None = None) -> None:
        self.path = path
        if path != "-":
            if os.path.isdir(path):
                raise UsageError(f"{path} is a directory")
            if os.path.exists(path) and not force:
                raise UsageError(f"{path} exists; use --force to overwrite it")
        self.resume = resume if path != "-" else None
        self.offset = 0
        self._tmp: str | None = None
        self._journal: str | None = None
        self._ck: _Checkpointed | None = None
        self.f: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.path == "-":
            self.f = sys.stdout.buffer
            return self.f
        d = os.path.dirname(os.path.abspath(self.path))
        mode = 0o666 & ~_umask()  # mkstemp makes 0600; a download gets the user's usual mode
        try:
            if self.resume is None:
                fd, self._tmp = tempfile.mkstemp(prefix=".veil-", suffix=".part", dir=d)
            else:
                self._tmp = os.path.join(d, f".{os.path.basename(self.path)}.veil-part")
                self._journal = self._tmp + ".json"
                self.offset = self._resumable()
                fd = os.open(self._tmp, os.O_RDWR | os.O_CREAT, mode)
                os.ftruncate(fd, self.offset)  # past the journal's count nothing is known to be whole
                os.lseek(fd, self.offset, os.SEEK_SET)
        except OSError as e:
            raise UsageError(f"cannot write to {d}: {e.strerror or e}") from e
        os.fchmod(fd, mode)
        self.f = os.fdopen(fd, "wb")
        if self.resume is not None and self._journal is not None:
            self._ck = _Checkpointed(self.f, self._journal, self.resume, self.offset)
            self._ck.checkpoint()
            return cast(BinaryIO, self._ck)
        return self.f

    def _resumable(self) -> int:
        assert self._journal is not None and self._tmp is not None
        try:
            with open(self._journal) as j:
                v = json.load(j)
            have = os.path.getsize(self._tmp)
        except (OSError, ValueError):
            return 0
        n = v.get("verified") if isinstance(v, dict) and v.get("file") == self.resume else None
        return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= have else 0

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        assert self.f is not None
        if self.path == "-":
            self.f.flush()
            return
        try:
            if et is None:
                self.f.flush()
                os.fsync(self.f.fileno())
            elif self._ck is not None:
                self._ck.checkpoint()  # every byte written was verified: keep them for the next run
            self.f.close()
            if et is None:
                assert self._tmp is not None
                os.replace(self._tmp, self.path)
                self._tmp = None
                if self._journal is not None:
                    os.unlink(self._journal)
        finally:
            if self._tmp is not None and self._ck is None:
                os.unlink(self._tmp)
