"""Multipart uploads: create, upload part (and part copy), list parts, complete, abort, list uploads.

Each part is uploaded as its own immutable file as it arrives, so parts go up in parallel (one
server worker per request). Complete checks the list (ascending, every part known with its
ETag, all but the last at least 5 MiB), then streams the parts one after the other into one
new file — the object a folder entry names, readable by any Veil client — and links it; the
object's ETag is S3's ``md5(md5s)-N``. The table of open uploads lives in the endpoint's
memory (docs/specs/s3.md: a restart forgets open uploads; stored objects are never touched).

Imports from: veil.net, veil.s3.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from veil.net.server import Response
from veil.s3 import xmlio
from veil.s3.buckets import OWNER
from veil.s3.context import Ctx, empty, iso_date, xml
from veil.s3.errors import S3Error
from veil.s3.etag import multipart_etag, quoted, unquoted
from veil.s3.listing import max_keys_param
from veil.s3.meta import ObjectMeta
from veil.s3.objects import _check_length, copy_source, object_headers, store_body
from veil.s3.store import key_parts
from veil.s3.transfer import ConcatReader, Download

MIN_PART = 5 << 20
MAX_PARTS = 10000
MAX_OPEN_UPLOADS = 10000


@dataclass
class Part:
    number: int
    cap: str
    size: int
    etag: str
    mtime: int


@dataclass
class Upload:
    uid: str
    root: str
    bucket: str
    key: str
    headers: dict[str, str]
    initiated: int
    parts: dict[int, Part] = field(default_factory=dict)


class Multipart:
    def __init__(self) -> None:
        self._uploads: dict[str, Upload] = {}
        self._lock = threading.Lock()

    def _get(self, c: Ctx) -> Upload:
        uid = c.query.get("uploadId", "")
        with self._lock:
            up = self._uploads.get(uid)
        if up is None or up.root != c.root.to_string() or up.bucket != c.bucket or up.key != c.key:
            raise S3Error("NoSuchUpload", "the specified multipart upload does not exist", resource=c.key)
        return up

    def create(self, c: Ctx) -> Response:
        assert c.bucket is not None and c.key is not None
        key_parts(c.key)
        headers = object_headers(c)
        c.store.bucket_mtime(c.root, c.bucket)
        up = Upload(secrets.token_urlsafe(24), c.root.to_string(), c.bucket, c.key, headers, int(time.time()))
        with self._lock:
            if len(self._uploads) >= MAX_OPEN_UPLOADS:
                raise S3Error("SlowDown", "too many open multipart uploads")
            self._uploads[up.uid] = up
        return xml("InitiateMultipartUploadResult", [("Bucket", c.bucket), ("Key", c.key), ("UploadId", up.uid)])

    def _number(self, c: Ctx) -> int:
        raw = c.query.get("partNumber", "")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARTS:
            raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        return int(raw)

    def upload_part(self, c: Ctx) -> Response:
        up = self._get(c)
        n = self._number(c)
        r = c.body_reader()
        _check_length(c, r)
        cap = store_body(c, r, r.size, f"{key_parts(up.key)[-1]}.part{n}", "application/octet-stream")
        etag = quoted(r.finish())
        with self._lock:
            up.parts[n] = Part(n, cap, r.size, etag, int(time.time()))
        out = {"ETag": etag}
        for algo, (ck, _) in r.checksums.items():
            out[f"x-amz-checksum-{algo}"] = ck.value()
        return empty(headers=out)

    def upload_part_copy(self, c: Ctx) -> Response:
        up = self._get(c)
        n = self._number(c)
        _, _, info = copy_source(c)
        start, end = 0, info.size
        rng = c.header("x-amz-copy-source-range")
        if rng is not None:
            a, dash, b = rng.removeprefix("bytes=").partition("-")
            if not rng.startswith("bytes=") or not dash or not a.isdigit() or not b.isdigit() or int(a) > int(b):
                raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last")
            start, end = int(a), int(b) + 1
            if end > info.size:
                raise S3Error("InvalidRange", "The requested range is not satisfiable")
        import hashlib

        md5 = hashlib.md5()
        net = c.network()
        src = ConcatReader([lambda: Download(net, info.cap, (start, end))])

        class Hashing:
            def readinto(self, mv: memoryview) -> int:
                got = src.readinto(mv)
                md5.update(mv[:got])
                return got

        try:
            cap = store_body(c, Hashing(), end - start, f"{key_parts(up.key)[-1]}.part{n}", "application/octet-stream")
        finally:
            src.close()
        etag = quoted(md5.hexdigest())
        now = int(time.time())
        with self._lock:
            up.parts[n] = Part(n, cap, end - start, etag, now)
        return xml("CopyPartResult", [("LastModified", iso_date(now)), ("ETag", etag)])

    def list_parts(self, c: Ctx) -> Response:
        up = self._get(c)
        max_parts = min(max_keys_param(c.query.get("max-parts")), 1000)
        marker_raw = c.query.get("part-number-marker", "0")
        marker = int(marker_raw) if marker_raw.isdigit() else 0
        with self._lock:
            parts = sorted((p for p in up.parts.values() if p.number > marker), key=lambda p: p.number)
        page, more = parts[:max_parts], len(parts) > max_parts
        kids: list[tuple[str, xmlio.Value]] = [
            ("Bucket", up.bucket), ("Key", up.key), ("UploadId", up.uid), ("Initiator", list(OWNER)),
            ("Owner", list(OWNER)), ("StorageClass", "STANDARD"), ("PartNumberMarker", marker),
            ("NextPartNumberMarker", page[-1].number if page else marker), ("MaxParts", max_parts),
            ("IsTruncated", more)]  # fmt: skip
        kids += [("Part", [("PartNumber", p.number), ("LastModified", iso_date(p.mtime)), ("ETag", p.etag),
                           ("Size", p.size)]) for p in page]  # fmt: skip
        return xml("ListPartsResult", kids)

    def abort(self, c: Ctx) -> Response:
        up = self._get(c)
        with self._lock:
            self._uploads.pop(up.uid, None)
        return empty(204)

    def complete(self, c: Ctx) -> Response:
        up = self._get(c)
        wanted = xmlio.parse_complete(c.small_body(), MAX_PARTS)
        nums = [n for n, _ in wanted]
        if nums != sorted(nums) or len(set(nums)) != len(nums):
            raise S3Error("InvalidPartOrder", "the list of parts was not in ascending order")
        with self._lock:
            have = dict(up.parts)
        chosen: list[Part] = []
        for n, etag in wanted:
            p = have.get(n)
            if p is None or unquoted(p.etag) != unquoted(etag):
                raise S3Error("InvalidPart", "one or more of the specified parts could not be found")
            chosen.append(p)
        for p in chosen[:-1]:
            if p.size < MIN_PART:
                raise S3Error("EntityTooSmall", "your proposed upload is smaller than the minimum allowed object size")
        size = sum(p.size for p in chosen)
        ctype = up.headers.get("content-type", "binary/octet-stream")
        meta = ObjectMeta(multipart_etag([p.etag for p in chosen]), up.headers, tuple(p.size for p in chosen))
        if len(chosen) == 1:
            cap = chosen[0].cap
        else:
            net = c.network()
            src = ConcatReader([lambda p=p: Download(net, p.cap, None) for p in chosen])  # type: ignore[misc]
            try:
                cap = store_body(c, src, size, key_parts(up.key)[-1], ctype)
            finally:
                src.close()
        c.store.link(c.root, up.bucket, up.key, cap, size, ctype, meta)
        with self._lock:
            self._uploads.pop(up.uid, None)
        return xml("CompleteMultipartUploadResult", [("Location", f"/{up.bucket}/{up.key}"), ("Bucket", up.bucket),
                                                     ("Key", up.key), ("ETag", meta.etag)])  # fmt: skip

    def list_uploads(self, c: Ctx) -> Response:
        assert c.bucket is not None
        c.store.bucket_mtime(c.root, c.bucket)
        prefix = c.query.get("prefix", "")
        max_uploads = min(max_keys_param(c.query.get("max-uploads")), 1000)
        key_marker = c.query.get("key-marker", "")
        with self._lock:
            ups = sorted((u for u in self._uploads.values() if u.root == c.root.to_string() and u.bucket == c.bucket
                          and u.key.startswith(prefix) and u.key > key_marker), key=lambda u: (u.key, u.initiated))
        page, more = ups[:max_uploads], len(ups) > max_uploads
        kids: list[tuple[str, xmlio.Value]] = [
            ("Bucket", c.bucket), ("KeyMarker", key_marker), ("UploadIdMarker", c.query.get("upload-id-marker", "")),
            ("NextKeyMarker", page[-1].key if more and page else None),
            ("NextUploadIdMarker", page[-1].uid if more and page else None), ("Prefix", prefix or None),
            ("MaxUploads", max_uploads), ("IsTruncated", more)]  # fmt: skip
        kids += [("Upload", [("Key", u.key), ("UploadId", u.uid), ("Initiator", list(OWNER)), ("Owner", list(OWNER)),
                             ("StorageClass", "STANDARD"), ("Initiated", iso_date(u.initiated))]) for u in page]  # fmt: skip
        return xml("ListMultipartUploadsResult", kids)
