"""Bucket operations: ListBuckets, Create/Delete/HeadBucket, ListObjects v1 and v2, DeleteObjects.

Imports from: veil.s3, veil.net.
"""

from __future__ import annotations

from urllib.parse import quote

from veil.net.server import Response
from veil.s3 import xmlio
from veil.s3.context import Ctx, empty, iso_date, xml
from veil.s3.errors import S3Error
from veil.s3.listing import decode_token, encode_token, max_keys_param, paginate
from veil.s3.store import ObjectInfo

OWNER: list[tuple[str, xmlio.Value]] = [("ID", "veil"), ("DisplayName", "veil")]


def list_buckets(c: Ctx) -> Response:
    buckets: list[tuple[str, xmlio.Value]] = [
        ("Bucket", [("Name", name), ("CreationDate", iso_date(mtime))]) for name, mtime in c.store.list_buckets(c.root)]
    return xml("ListAllMyBucketsResult", [("Owner", list(OWNER)), ("Buckets", buckets)])


def create_bucket(c: Ctx) -> Response:
    assert c.bucket is not None
    if c.req.remaining:
        c.small_body(64 * 1024)  # CreateBucketConfiguration: any region is this endpoint
    c.store.create_bucket(c.root, c.bucket)
    return empty(headers={"Location": "/" + c.bucket})


def delete_bucket(c: Ctx) -> Response:
    assert c.bucket is not None
    c.store.delete_bucket(c.root, c.bucket)
    return empty(204)


def head_bucket(c: Ctx) -> Response:
    assert c.bucket is not None
    c.store.bucket_mtime(c.root, c.bucket)
    return empty(headers={"x-amz-bucket-region": "us-east-1"})


def location(c: Ctx) -> Response:
    assert c.bucket is not None
    c.store.bucket_mtime(c.root, c.bucket)
    return xml("LocationConstraint", [])


def acl(c: Ctx) -> Response:
    """GetBucketAcl / GetObjectAcl: always private, owned by the key's tenant (no ACLs here)."""
    if c.key is not None:
        c.store.head(c.root, c.bucket or "", c.key)
    else:
        c.store.bucket_mtime(c.root, c.bucket or "")
    grantee: list[tuple[str, xmlio.Value]] = [("ID", "veil"), ("DisplayName", "veil")]
    return Response(body=xmlio.render_acl(grantee), content_type="application/xml")


def _enc(text: str, url: bool) -> str:
    return quote(text, safe="/") if url else text


def list_objects(c: Ctx) -> Response:
    assert c.bucket is not None
    q = c.query
    v2 = q.get("list-type") == "2"
    if "list-type" in q and not v2:
        raise S3Error("InvalidArgument", "list-type must be 2")
    enc = q.get("encoding-type")
    if enc is not None and enc != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
    url = enc == "url"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = max_keys_param(q.get("max-keys"))
    token = q.get("continuation-token")
    if v2:
        after = decode_token(token) if token else q.get("start-after", "")
    else:
        after = q.get("marker", "")
    snap = c.store.bucket(c.root, c.bucket)
    # the walk prunes with the marker; keys equal to it are dropped by paginate
    items = c.store.walk(snap, "", prefix, delimiter, after)
    page = paginate(items, prefix, delimiter, after, max_keys)
    contents: list[tuple[str, xmlio.Value]] = []
    for key, info in page.contents:
        contents.append(("Contents", _entry(key, info, url, owner=not v2 or q.get("fetch-owner") == "true")))
    prefixes: list[tuple[str, xmlio.Value]] = [("CommonPrefixes", [("Prefix", _enc(p, url))]) for p in page.prefixes]
    # v1 leaves the top-level Prefix as sent (clients decode only Delimiter and the markers there)
    head: list[tuple[str, xmlio.Value]] = [("Name", c.bucket), ("Prefix", _enc(prefix, url and v2))]
    if v2:
        head += [("ContinuationToken", token), ("StartAfter", _enc(q["start-after"], url) if "start-after" in q else None),
                 ("KeyCount", len(page.contents) + len(page.prefixes))]
        tail: list[tuple[str, xmlio.Value]] = [
            ("NextContinuationToken", encode_token(page.last) if page.truncated and page.last else None)]
    else:
        head += [("Marker", _enc(after, url))]
        tail = [("NextMarker", _enc(page.last, url) if page.truncated and delimiter and page.last else None)]
    head += [("MaxKeys", max_keys), ("Delimiter", _enc(delimiter, url) if delimiter else None),
             ("EncodingType", "url" if url else None), ("IsTruncated", page.truncated)]
    return xml("ListBucketResult", head + tail + contents + prefixes)


def list_versions(c: Ctx) -> Response:
    """ListObjectVersions on an unversioned bucket, as S3 answers it: each object once, version "null"."""
    assert c.bucket is not None
    q = c.query
    url = q.get("encoding-type") == "url"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = max_keys_param(q.get("max-keys"))
    after = q.get("key-marker", "")
    snap = c.store.bucket(c.root, c.bucket)
    page = paginate(c.store.walk(snap, "", prefix, delimiter, after), prefix, delimiter, after, max_keys)
    kids: list[tuple[str, xmlio.Value]] = [
        ("Name", c.bucket), ("Prefix", _enc(prefix, url)), ("KeyMarker", _enc(after, url)), ("VersionIdMarker", ""),
        ("NextKeyMarker", _enc(page.last, url) if page.truncated and page.last else None),
        ("NextVersionIdMarker", "null" if page.truncated else None), ("MaxKeys", max_keys),
        ("Delimiter", _enc(delimiter, url) if delimiter else None), ("EncodingType", "url" if url else None),
        ("IsTruncated", page.truncated)]  # fmt: skip
    for key, info in page.contents:
        kids.append(("Version", [("Key", _enc(key, url)), ("VersionId", "null"), ("IsLatest", True),
                                 ("LastModified", iso_date(info.mtime)), ("ETag", info.meta.etag), ("Size", info.size),
                                 ("Owner", list(OWNER)), ("StorageClass", "STANDARD")]))  # fmt: skip
    kids += [("CommonPrefixes", [("Prefix", _enc(p, url))]) for p in page.prefixes]
    return xml("ListVersionsResult", kids)


def _entry(key: str, info: ObjectInfo, url: bool, owner: bool) -> list[tuple[str, xmlio.Value]]:
    return [("Key", _enc(key, url)), ("LastModified", iso_date(info.mtime)), ("ETag", info.meta.etag),
            ("Size", info.size), ("Owner", list(OWNER) if owner else None), ("StorageClass", "STANDARD")]


def delete_objects(c: Ctx) -> Response:
    assert c.bucket is not None
    if c.header("content-md5") is None and not any(c.header(f"x-amz-checksum-{a}") for a in ("crc32", "crc32c", "sha1", "sha256")) \
            and c.header("x-amz-sdk-checksum-algorithm") is None and c.auth is not None \
            and c.auth.payload == "UNSIGNED-PAYLOAD":
        raise S3Error("InvalidRequest", "Missing required header for this request: Content-MD5")
    objs, quiet = xmlio.parse_delete(c.small_body())
    c.store.bucket_mtime(c.root, c.bucket)
    out: list[tuple[str, xmlio.Value]] = []
    for key, _version in objs:
        try:
            c.store.delete(c.root, c.bucket, key)
            if not quiet:
                out.append(("Deleted", [("Key", key)]))
        except S3Error as e:
            out.append(("Error", [("Key", key), ("Code", e.code), ("Message", e.message)]))
    return xml("DeleteResult", out)
