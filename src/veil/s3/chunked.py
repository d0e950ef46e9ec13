"""The ``aws-chunked`` body encoding, decoded sans I/O, chunk signatures and trailers checked.

    chunk   = hex-size [";chunk-signature=" 64hex] CRLF data CRLF
    body    = *chunk last-chunk [trailer] CRLF
    last    = "0" [";chunk-signature=" 64hex] CRLF
    trailer = *(name ":" value CRLF) ["x-amz-trailer-signature:" 64hex CRLF]

``feed(bytes)`` returns the payload pieces found so far (views into what was fed: nothing is
buffered but one chunk-size or trailer line, at most ``MAX_LINE`` bytes); a chunk whose
signature fails raises ``SignatureDoesNotMatch`` as soon as its last byte has arrived. The body
is only committed (linked into a folder) once ``done`` and every check passed, so data handed on
before a bad signature is found is never visible.
Imports from: veil.s3.errors, veil.s3.sigv4.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from veil.s3.errors import S3Error
from veil.s3.sigv4 import EMPTY_SHA256, chunk_string_to_sign, sign, trailer_string_to_sign

MAX_LINE = 4096
MAX_TRAILERS = 8
MAX_CHUNK = 1 << 30


@dataclass(frozen=True)
class ChunkSigning:
    key: bytes
    amz_date: str
    scope: str
    seed: str


class ChunkDecoder:
    """One aws-chunked body. ``signing`` None: unsigned chunks (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""

    def __init__(self, signing: ChunkSigning | None, trailer: bool) -> None:
        self.signing = signing
        self.expect_trailer = trailer
        self.previous = signing.seed if signing else ""
        self.trailers: dict[str, str] = {}
        self.done = False
        self._line = bytearray()
        self._state = "size"  # size -> data -> crlf -> size ... -> trailer -> done
        self._left = 0
        self._sig = ""
        self._hash = hashlib.sha256()
        self._trailer_text = ""
        self._trailer_sig: str | None = None

    def feed(self, data: bytes | memoryview) -> list[memoryview]:
        out: list[memoryview] = []
        mv = memoryview(data)
        pos = 0
        while pos < len(mv):
            if self.done:
                raise S3Error("IncompleteBody", "bytes after the end of the aws-chunked body")
            if self._state == "data":
                take = min(self._left, len(mv) - pos)
                piece = mv[pos:pos + take]
                self._hash.update(piece)
                out.append(piece)
                pos += take
                self._left -= take
                if self._left == 0:
                    self._end_chunk()
                    self._state = "crlf"
                continue
            nl = bytes(mv[pos:pos + MAX_LINE + 2]).find(b"\n")
            if nl < 0:
                self._line += mv[pos:]
                if len(self._line) > MAX_LINE:
                    raise S3Error("IncompleteBody", "aws-chunked line too long")
                return out
            self._line += mv[pos:pos + nl + 1]
            pos += nl + 1
            if len(self._line) > MAX_LINE + 2 or not self._line.endswith(b"\r\n"):
                raise S3Error("IncompleteBody", "malformed aws-chunked body (lines end with CRLF)")
            line = bytes(self._line[:-2])
            self._line.clear()
            self._on_line(line)
        return out

    def _on_line(self, line: bytes) -> None:
        if self._state == "crlf":
            if line:
                raise S3Error("IncompleteBody", "aws-chunked data longer than its chunk size")
            self._state = "size"
        elif self._state == "size":
            self._size_line(line)
        elif self._state == "trailer":
            self._trailer_line(line)
        elif self._state == "final":
            if line:
                raise S3Error("IncompleteBody", "malformed end of the aws-chunked body")
            self.done = True

    def _size_line(self, line: bytes) -> None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise S3Error("IncompleteBody", "malformed aws-chunked size line") from None
        size_text, _, ext = text.partition(";")
        if not size_text or len(size_text) > 8 or any(c not in "0123456789abcdefABCDEF" for c in size_text):
            raise S3Error("IncompleteBody", "malformed aws-chunked chunk size")
        size = int(size_text, 16)
        if size > MAX_CHUNK:
            raise S3Error("EntityTooLarge", "aws-chunked chunk too large")
        if self.signing is not None:
            name, eq, sig = ext.partition("=")
            if name != "chunk-signature" or not eq or len(sig) != 64:
                raise S3Error("IncompleteBody", "aws-chunked chunk without a chunk-signature")
            self._sig = sig
        self._hash = hashlib.sha256()
        self._left = size
        if size:
            self._state = "data"
            return
        self._end_chunk()
        self._state = "trailer" if self.expect_trailer else "final"

    def _end_chunk(self) -> None:
        if self.signing is None:
            return
        s = self.signing
        text = chunk_string_to_sign(s.amz_date, s.scope, self.previous, self._hash.hexdigest())
        expect = sign(s.key, text)
        if not hmac.compare_digest(expect, self._sig):
            raise S3Error("SignatureDoesNotMatch", "an aws-chunked chunk signature does not match")
        self.previous = expect

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._finish_trailer()
            return
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise S3Error("IncompleteBody", "malformed aws-chunked trailer") from None
        name, colon, value = text.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise S3Error("IncompleteBody", "malformed aws-chunked trailer")
        if name == "x-amz-trailer-signature":
            self._trailer_sig = value.strip()
            return
        if self._trailer_sig is not None or len(self.trailers) >= MAX_TRAILERS:
            raise S3Error("IncompleteBody", "malformed aws-chunked trailer")
        self.trailers[name] = value.strip()
        self._trailer_text += f"{name}:{value.strip()}\n"

    def _finish_trailer(self) -> None:
        if self.signing is not None:
            if self._trailer_sig is None:
                raise S3Error("SignatureDoesNotMatch", "the aws-chunked trailer is not signed")
            s = self.signing
            digest = hashlib.sha256(self._trailer_text.encode()).hexdigest() if self._trailer_text else EMPTY_SHA256
            expect = sign(s.key, trailer_string_to_sign(s.amz_date, s.scope, self.previous, digest))
            if not hmac.compare_digest(expect, self._trailer_sig):
                raise S3Error("SignatureDoesNotMatch", "the aws-chunked trailer signature does not match")
        self.done = True
