"""Bodies in constant memory, both ways.

``BodyReader`` turns a request body (plain, or ``aws-chunked``) into the ``readinto`` source
that ``veil.client.upload`` reads segment by segment, hashing as it goes: MD5 for the ETag,
SHA-256 when the payload is signed, and the ``x-amz-checksum-*`` the client announced; ``finish``
checks them all once the last byte is in (before anything is linked into a folder).
``Download`` runs ``veil.client.download`` in a thread into a small bounded queue and is the
response body iterator; closing it (the client went away) stops the download.

Imports from: veil.errors, veil.client, veil.s3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from veil.client.download import download
from veil.client.network import Network
from veil.errors import VeilError
from veil.format.caps import parse_read_cap
from veil.s3.checksums import ALGORITHMS, Checksum, check
from veil.s3.chunked import ChunkDecoder, ChunkSigning
from veil.s3.errors import S3Error
from veil.s3.sigv4 import STREAMING, STREAMING_MODES, STREAMING_TRAILER, UNSIGNED, Verified

RAW_BLOCK = 256 * 1024
QUEUE_ITEMS = 8  # at most this many segments (1 MiB) in flight per download


class RawBody(Protocol):
    remaining: int

    def readinto_exact(self, mv: memoryview) -> None: ...


class BodyReader:
    """The request body as a file of ``size`` bytes (what the object will hold)."""

    def __init__(self, raw: RawBody, auth: Verified | None, get: Callable[[str], str | None]) -> None:
        self.raw = raw
        self.payload = auth.payload if auth is not None else UNSIGNED
        self.md5 = hashlib.md5()
        self.sha = hashlib.sha256() if self.payload not in (UNSIGNED, *STREAMING_MODES) else None
        self.checksums: dict[str, tuple[Checksum, str | None]] = {}
        self._content_md5 = get("content-md5")
        if self._content_md5 is not None:
            try:
                if len(base64.b64decode(self._content_md5, validate=True)) != 16:
                    raise ValueError
            except ValueError:
                raise S3Error("InvalidDigest", "the Content-MD5 you specified was invalid") from None
        for algo in ALGORITHMS:
            value = get(f"x-amz-checksum-{algo}")
            if value is not None:
                self.checksums[algo] = (Checksum(algo), value)
        trailer = (get("x-amz-trailer") or "").strip().lower()
        self.decoder: ChunkDecoder | None = None
        encoding = [t.strip().lower() for t in (get("content-encoding") or "").split(",")]
        if self.payload in STREAMING_MODES or "aws-chunked" in encoding:
            if self.payload in (STREAMING, STREAMING_TRAILER) and auth is not None:
                signing: ChunkSigning | None = ChunkSigning(auth.signing_key, auth.amz_date, auth.scope,
                                                            auth.seed_signature)  # fmt: skip
            else:
                signing = None
            decoded = get("x-amz-decoded-content-length")
            if decoded is None or not decoded.isdigit() or len(decoded) > 15:
                raise S3Error("MissingContentLength", "aws-chunked bodies need x-amz-decoded-content-length")
            self.size = int(decoded)
            if trailer:
                if not trailer.startswith("x-amz-checksum-") or trailer[15:] not in ALGORITHMS:
                    raise S3Error("InvalidRequest", f"unsupported trailer {trailer[:40]!r}")
                self.checksums.setdefault(trailer[15:], (Checksum(trailer[15:]), None))
            self.decoder = ChunkDecoder(signing, trailer=bool(trailer))
        else:
            self.size = raw.remaining
        self._pending = bytearray()
        self._raw_buf = bytearray(RAW_BLOCK)
        self.delivered = 0

    def _pull(self) -> None:
        assert self.decoder is not None
        n = min(RAW_BLOCK, self.raw.remaining)
        if n == 0:
            raise S3Error("IncompleteBody", "the request body ended before the aws-chunked encoding did")
        mv = memoryview(self._raw_buf)[:n]
        self.raw.readinto_exact(mv)
        for piece in self.decoder.feed(mv):
            self._pending += piece

    def readinto(self, mv: memoryview) -> int:
        want = min(len(mv), self.size - self.delivered)
        if want <= 0:
            return 0
        if self.decoder is None:
            self.raw.readinto_exact(mv[:want])
        else:
            while len(self._pending) < want and not self.decoder.done:
                self._pull()
            if len(self._pending) < want:
                raise S3Error("IncompleteBody", "the aws-chunked body is shorter than x-amz-decoded-content-length")
            mv[:want] = self._pending[:want]
            del self._pending[:want]
        piece = mv[:want]
        self.md5.update(piece)
        if self.sha is not None:
            self.sha.update(piece)
        for c, _ in self.checksums.values():
            c.update(piece)
        self.delivered += want
        return want

    def finish(self) -> str:
        """Check every digest of the whole body; returns the MD5 (hex) for the ETag."""
        if self.decoder is not None:
            while not self.decoder.done:
                self._pull()
            if self._pending or self.raw.remaining:
                raise S3Error("IncompleteBody", "the aws-chunked body is longer than x-amz-decoded-content-length")
            for name, value in self.decoder.trailers.items():
                algo = name.removeprefix("x-amz-checksum-")
                if algo in self.checksums:
                    self.checksums[algo] = (self.checksums[algo][0], value)
        if self.sha is not None and not hmac.compare_digest(self.sha.hexdigest(), self.payload):
            raise S3Error("XAmzContentSHA256Mismatch", "the provided x-amz-content-sha256 header does not match "
                          "what was computed")  # fmt: skip
        if self._content_md5 is not None and base64.b64decode(self._content_md5) != self.md5.digest():
            raise S3Error("BadDigest", "the Content-MD5 you specified did not match what we received")
        for algo, (c, expected) in self.checksums.items():
            if expected is None:
                raise S3Error("InvalidRequest", f"the x-amz-checksum-{algo} trailer is missing")
            check(algo, expected, c)
        return self.md5.hexdigest()


class _Stop(Exception):
    pass


_END = object()


class Download:
    """The plaintext of a file (or a range of it) as an iterator of bytes, read ahead a little."""

    def __init__(self, net: Network, cap: str, byte_range: tuple[int, int] | None) -> None:
        self._q: queue.Queue[object] = queue.Queue(QUEUE_ITEMS)
        self._stop = threading.Event()
        self._first: object = None
        rc = parse_read_cap(cap)
        self._t = threading.Thread(target=self._run, args=(net, rc, byte_range), daemon=True, name="s3-download")
        self._t.start()

    def write(self, data: memoryview | bytes) -> int:
        b = bytes(data)
        while True:
            if self._stop.is_set():
                raise _Stop()
            try:
                self._q.put(b, timeout=0.5)
                return len(b)
            except queue.Full:
                continue

    def _run(self, net: Network, rc: object, byte_range: tuple[int, int] | None) -> None:
        try:
            download(net, rc, self, byte_range=byte_range)  # type: ignore[arg-type]
            item: object = _END
        except _Stop:
            return
        except VeilError as e:
            item = e
        except Exception as e:
            item = e
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _get(self) -> object:
        while True:
            try:
                return self._q.get(timeout=1.0)
            except queue.Empty:
                if not self._t.is_alive() and self._q.empty():
                    return RuntimeError("download thread ended without a result")

    def start(self) -> None:
        """Wait for the first bytes (or the failure) before any header is sent."""
        self._first = self._get()
        if isinstance(self._first, BaseException):
            self._stop.set()
            raise self._first

    def __iter__(self) -> Iterator[bytes]:
        item = self._first
        self._first = None
        while True:
            if item is None:
                item = self._get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
            item = None

    def close(self) -> None:
        self._stop.set()


class ConcatReader:
    """``readinto`` over several downloads in turn (multipart complete, copies)."""

    def __init__(self, sources: list[Callable[[], Download]]) -> None:
        self._sources = list(sources)
        self._it: Iterator[bytes] | None = None
        self._cur: Download | None = None
        self._buf = b""

    def readinto(self, mv: memoryview) -> int:
        got = 0
        while got < len(mv):
            if not self._buf:
                if self._it is None:
                    if not self._sources:
                        return got
                    self._cur = self._sources.pop(0)()
                    self._cur.start()
                    self._it = iter(self._cur)
                nxt = next(self._it, None)
                if nxt is None:
                    self._it = None
                    continue
                self._buf = nxt
            take = min(len(mv) - got, len(self._buf))
            mv[got:got + take] = self._buf[:take]
            self._buf = self._buf[take:]
            got += take
        return got

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
