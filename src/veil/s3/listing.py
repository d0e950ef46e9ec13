"""ListObjects (v1 and v2) pagination over keys in order, sans I/O.

``paginate`` walks keys in UTF-8 byte order (code point order, the same for str), groups
keys by ``delimiter`` after ``prefix`` into common prefixes, skips everything at or before the
marker / start-after / continuation token, and stops after ``max_keys`` keys and prefixes
together. The store may hand over a whole subtree as one collapsed item (a key ending in the
delimiter with ``None`` info) when it knows every key under it shares that common prefix, so
a listing with ``delimiter=/`` never reads folders it only has to name.
Imports from: veil.s3.errors (and the standard library).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from veil.s3.errors import S3Error

T = TypeVar("T")
MAX_KEYS = 1000


@dataclass
class Page(Generic[T]):
    contents: list[tuple[str, T]] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str | None = None  # the last key or prefix returned: NextMarker / the continuation token


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    i = key.find(delimiter, len(prefix))
    return None if i < 0 else key[: i + len(delimiter)]


def paginate(items: Iterable[tuple[str, T | None]], prefix: str, delimiter: str, after: str,
             max_keys: int) -> Page[T]:  # fmt: skip
    """One page of the listing; ``items`` in order (info None: a collapsed subtree, see above)."""
    page: Page[T] = Page()
    if max_keys == 0:
        return page  # S3: nothing, and not truncated
    count = 0
    for key, info in items:
        if not key.startswith(prefix):
            continue
        cp = common_prefix(key, prefix, delimiter)
        if cp is not None:
            if cp <= after or cp == page.last:
                continue
            if count >= max_keys:
                page.truncated = True
                return page
            page.prefixes.append(cp)
            page.last = cp
            count += 1
            continue
        if key <= after or info is None:
            continue
        if count >= max_keys:
            page.truncated = True
            return page
        page.contents.append((key, info))
        page.last = key
        count += 1
    return page


def max_keys_param(raw: str | None) -> int:
    if raw is None:
        return MAX_KEYS
    if not raw.strip().lstrip("-").isdigit():
        raise S3Error("InvalidArgument", "max-keys must be an integer")
    n = int(raw)
    if n < 0:
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer")
    return min(n, MAX_KEYS)


def encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(b"v1:" + key.encode()).decode()


def decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        if not raw.startswith(b"v1:"):
            raise ValueError
        return raw[3:].decode()
    except (binascii.Error, ValueError, UnicodeError):
        raise S3Error("InvalidArgument", "the continuation token provided is incorrect") from None
