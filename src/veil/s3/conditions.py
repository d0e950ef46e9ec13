"""Conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) and
byte ranges, as S3 evaluates them (RFC 9110 §13 and §14), sans I/O.
Imports from: veil.s3.errors, veil.s3.etag (and the standard library).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from veil.s3.errors import S3Error
from veil.s3.etag import unquoted

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _when(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None  # S3 ignores a date it cannot parse


def _matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or unquoted(etag) in {unquoted(t) for t in tags}


def evaluate(get: Callable[[str], str | None], etag: str, mtime: int, read: bool,
             prefix: str = "") -> None:  # fmt: skip
    """Raise PreconditionFailed (412) or NotModified (304) as the headers ask; ``read``: GET/HEAD.

    ``prefix`` is ``x-amz-copy-source-`` for CopyObject's conditions on its source."""
    if_match = get(prefix + "if-match")
    if_none = get(prefix + "if-none-match")
    since = _when(get(prefix + "if-modified-since"))
    unmod = _when(get(prefix + "if-unmodified-since"))
    if if_match is not None:
        if not _matches(if_match, etag):
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    elif unmod is not None and mtime > unmod:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    if if_none is not None:
        if _matches(if_none, etag):
            if read and not prefix:
                raise S3Error("NotModified", "Not Modified")
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    elif since is not None and mtime <= since:
        if read and not prefix:
            raise S3Error("NotModified", "Not Modified")
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of ``Range: bytes=...`` over an object of ``size`` bytes; None: the whole
    object (no header, or one S3 ignores); InvalidRange (416) when nothing of it is satisfiable."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise S3Error("InvalidRange", "The requested range is not satisfiable")
        return max(0, size - n), size
    start = int(first)
    end = size if not last else int(last) + 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", "The requested range is not satisfiable")
    return start, min(end, size)
