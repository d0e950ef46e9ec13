"""Object operations: PutObject, GetObject (ranges, conditions, part numbers), HeadObject,
DeleteObject, CopyObject. Bodies stream in constant memory (``transfer.py``); a new object is
linked into its folder only after its upload finished and every digest matched, so a failed or
aborted PUT leaves the old object (or none) in place.

Imports from: veil.client, veil.net, veil.s3.
"""

from __future__ import annotations

from urllib.parse import unquote

from veil.client.upload import upload
from veil.net.server import Response
from veil.s3.conditions import byte_range, evaluate
from veil.s3.context import Ctx, empty, http_date, iso_date, xml
from veil.s3.errors import S3Error
from veil.s3.etag import quoted
from veil.s3.meta import ObjectMeta
from veil.s3.store import ObjectInfo, key_parts
from veil.s3.transfer import BodyReader, ConcatReader, Download

MAX_OBJECT = 5 << 30  # bytes in one PUT, as S3
MAX_METADATA = 2048  # bytes of user metadata, as S3
STORED_HEADERS = ("content-type", "content-disposition", "content-encoding", "content-language", "cache-control",
                  "expires", "x-amz-website-redirect-location")  # fmt: skip
OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
             "response-expires": "Expires", "response-cache-control": "Cache-Control",
             "response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding"}


def object_headers(c: Ctx) -> dict[str, str]:
    """The headers of a new object that S3 keeps and sends back (user metadata included)."""
    out: dict[str, str] = {}
    for name, value in c.req.headers.items():
        low = name.lower()
        if low in STORED_HEADERS or low.startswith("x-amz-meta-"):
            if low == "content-encoding":
                value = ",".join(t for t in (x.strip() for x in value.split(",")) if t and t != "aws-chunked")
                if not value:
                    continue
            out[low] = value if low not in out else out[low] + "," + value
    size = sum(len(k) - 11 + len(v) for k, v in out.items() if k.startswith("x-amz-meta-"))
    if size > MAX_METADATA:
        raise S3Error("MetadataTooLarge", f"your metadata headers exceed the maximum allowed metadata size ({MAX_METADATA} bytes)")
    out.setdefault("content-type", "binary/octet-stream")
    return out


def _check_length(c: Ctx, r: BodyReader) -> None:
    if r.decoder is None and c.header("content-length") is None:
        raise S3Error("MissingContentLength", "you must provide the Content-Length HTTP header")
    if r.size > MAX_OBJECT:
        raise S3Error("EntityTooLarge", "your proposed upload exceeds the maximum allowed object size")


def store_body(c: Ctx, src: object, size: int, name: str, content_type: str) -> str:
    """Upload ``size`` bytes from ``src`` as an immutable file; its read cap."""
    res = upload(c.network(), src, size, name, content_type[:128], k=c.k, n=c.n)  # type: ignore[arg-type]
    return res.cap.to_string()


def put_object(c: Ctx) -> Response:
    assert c.bucket is not None and c.key is not None
    parts = key_parts(c.key)
    headers = object_headers(c)
    r = c.body_reader()
    _check_length(c, r)
    c.store.bucket_mtime(c.root, c.bucket)  # NoSuchBucket before any body is read
    if c.header("if-none-match") == "*" or c.header("if-match") is not None:
        _put_conditions(c)
    cap = store_body(c, r, r.size, parts[-1], headers["content-type"])
    md5 = r.finish()
    info = c.store.link(c.root, c.bucket, c.key, cap, r.size, headers["content-type"], ObjectMeta(quoted(md5), headers))
    out = {"ETag": info.meta.etag}
    for algo, (ck, _) in r.checksums.items():
        out[f"x-amz-checksum-{algo}"] = ck.value()
    return empty(headers=out)


def _put_conditions(c: Ctx) -> None:
    assert c.bucket is not None and c.key is not None
    try:
        cur: ObjectInfo | None = c.store.head(c.root, c.bucket, c.key)
    except S3Error as e:
        if e.code != "NoSuchKey":
            raise
        cur = None
    if c.header("if-none-match") == "*" and cur is not None:
        raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    if c.header("if-match") is not None:
        if cur is None:
            raise S3Error("NoSuchKey", "the specified key does not exist", resource=c.key)
        evaluate(c.header, cur.meta.etag, cur.mtime, read=False)


def _head_fields(info: ObjectInfo) -> dict[str, str]:
    out = {"ETag": info.meta.etag, "Last-Modified": http_date(info.mtime), "Accept-Ranges": "bytes"}
    for k, v in info.meta.headers.items():
        out["-".join(w.capitalize() for w in k.split("-")) if not k.startswith("x-amz-meta-") else k] = v
    if "content-type" not in info.meta.headers:
        out["Content-Type"] = info.content_type
    if info.meta.parts:
        out["x-amz-mp-parts-count"] = str(len(info.meta.parts))
    return out


def _part_range(c: Ctx, info: ObjectInfo) -> tuple[int, int] | None:
    raw = c.query.get("partNumber")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 10000:
        raise S3Error("InvalidArgument", "partNumber must be an integer between 1 and 10000")
    n = int(raw)
    sizes = info.meta.parts or (info.size,)
    if n > len(sizes):
        raise S3Error("InvalidPartNumber", "the requested partnumber is not satisfiable", status=416)
    start = sum(sizes[: n - 1])
    return start, start + sizes[n - 1]


def get_object(c: Ctx, head_only: bool = False) -> Response:
    assert c.bucket is not None and c.key is not None
    info = c.store.head(c.root, c.bucket, c.key)
    try:
        evaluate(c.header, info.meta.etag, info.mtime, read=True)
    except S3Error as e:
        if e.code != "NotModified":
            raise
        # as S3: no body, the validators in the head
        return empty(304, {"ETag": info.meta.etag, "Last-Modified": http_date(info.mtime)})
    headers = _head_fields(info)
    for q, h in OVERRIDES.items():
        if q in c.query:
            headers[h] = c.query[q]
    rng = _part_range(c, info)
    if rng is None:
        rng = byte_range(c.header("range"), info.size)
    status = 200
    if rng is not None and (rng != (0, info.size) or c.header("range") or "partNumber" in c.query):
        status = 206
        headers["Content-Range"] = f"bytes {rng[0]}-{rng[1] - 1}/{info.size}" if rng[1] > rng[0] else f"bytes */{info.size}"
    start, end = rng or (0, info.size)
    ctype = headers.pop("Content-Type", info.content_type)
    if head_only or end == start:
        return Response(status=status, body=iter(()), content_type=ctype, headers=headers, content_length=end - start)
    body = Download(c.network(), info.cap, rng)
    body.start()  # a failure now is still an S3 error, before any header is sent
    return Response(status=status, body=body, content_type=ctype, headers=headers, content_length=end - start)


def delete_object(c: Ctx) -> Response:
    assert c.bucket is not None and c.key is not None
    c.store.bucket_mtime(c.root, c.bucket)
    c.store.delete(c.root, c.bucket, c.key)
    return empty(204)


def copy_source(c: Ctx) -> tuple[str, str, ObjectInfo]:
    raw = unquote(c.header("x-amz-copy-source") or "")
    src = raw.split("?versionId=")[0].lstrip("/")
    bucket, _, key = src.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    info = c.store.head(c.root, bucket, key)
    evaluate(c.header, info.meta.etag, info.mtime, read=True, prefix="x-amz-copy-source-")
    return bucket, key, info


def copy_object(c: Ctx) -> Response:
    assert c.bucket is not None and c.key is not None
    key_parts(c.key)
    sbucket, skey, info = copy_source(c)
    directive = (c.header("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive")
    c.store.bucket_mtime(c.root, c.bucket)
    if directive == "COPY":
        if (sbucket, skey) == (c.bucket, c.key):
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                          "itself without changing the object's metadata, storage class, website redirect location "
                          "or encryption attributes.")  # fmt: skip
        new = c.store.link(c.root, c.bucket, c.key, info.cap, info.size, info.content_type, info.meta)
    else:
        headers = object_headers(c)
        net = c.network()
        src = ConcatReader([lambda: Download(net, info.cap, None)])
        try:
            cap = store_body(c, src, info.size, key_parts(c.key)[-1], headers["content-type"])
        finally:
            src.close()
        meta = ObjectMeta(info.meta.etag, headers, info.meta.parts)
        new = c.store.link(c.root, c.bucket, c.key, cap, info.size, headers["content-type"], meta)
    return xml("CopyObjectResult", [("LastModified", iso_date(new.mtime)), ("ETag", new.meta.etag)])
