"""The additional checksums S3 clients send (``x-amz-checksum-*``), computed incrementally.

boto3 >= 1.36 and recent aws-cli add one by default (CRC32), in a header or, on aws-chunked
bodies, in a trailer; S3 answers BadDigest when it does not match the body.
Imports from: veil.s3.errors, crc32c (and the standard library).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable

import crc32c as _crc32c

from veil.s3.errors import S3Error

ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256")


class Checksum:
    """One running checksum; ``value()`` is the base64 form S3 puts in headers."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._crc = 0
        self._hash = hashlib.new(algorithm) if algorithm in ("sha1", "sha256") else None
        self._fn: Callable[[bytes | memoryview, int], int] | None = {
            "crc32": zlib.crc32, "crc32c": _crc32c.crc32c}.get(algorithm)  # fmt: skip
        if self._hash is None and self._fn is None:
            raise S3Error("InvalidRequest", f"checksum algorithm {algorithm[:20]!r} is not supported "
                          f"(use one of {', '.join(ALGORITHMS)})")  # fmt: skip

    def update(self, data: bytes | memoryview) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            assert self._fn is not None
            self._crc = self._fn(data, self._crc)

    def value(self) -> str:
        raw = self._hash.digest() if self._hash is not None else self._crc.to_bytes(4, "big")
        return base64.b64encode(raw).decode()


def header_name(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm}"


def check(algorithm: str, expected: str, got: Checksum) -> None:
    """BadDigest unless ``expected`` (base64, as sent) is the checksum of the body."""
    try:
        want = base64.b64decode(expected, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidRequest", f"value specified in the {header_name(algorithm)} header is invalid") from None
    if base64.b64encode(want).decode() != got.value():
        raise S3Error("BadDigest", f"the {algorithm.upper()} you specified did not match the calculated checksum")
