"""The S3 endpoint with boto3 on a real devnet: buckets, objects of boundary sizes and odd keys,
listings, multipart, ranges, conditions, metadata, copies, presigned URLs, and errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from devnet_helpers import RunningDevnet
from s3_helpers import Endpoint, boto_client, start_endpoint

pytestmark = pytest.mark.integration
MiB = 1 << 20


@pytest.fixture(scope="module")
def ep(devnet: RunningDevnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    log = tmp_path_factory.mktemp("s3log") / "serve.log"
    e = start_endpoint(devnet, ("main", "tenant2"), log)
    yield e
    e.stop()


@pytest.fixture(scope="module")
def s3(ep: Endpoint) -> Any:
    return boto_client(ep)


def _code(exc: Any) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_buckets_lifecycle(s3: Any) -> None:
    from botocore.exceptions import ClientError

    s3.create_bucket(Bucket="life")
    assert "life" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life")
    s3.create_bucket(Bucket="life")  # again: us-east-1 says 200 to the owner
    s3.put_object(Bucket="life", Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="life")
    assert _code(e.value) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="life", Key="x")
    s3.delete_bucket(Bucket="life")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="life")
    assert _code(e.value)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="life")
    assert _code(e.value) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert _code(e.value) == ("InvalidBucketName", 400)


KEYS = ["empty", "one", "with space.txt", "ünï/cödé ✓", "plus+sign", "per%cent", "deep/a/b/c/d/e/f.bin"]


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1])
def test_round_trip_sizes(s3: Any, size: int) -> None:
    s3.create_bucket(Bucket=f"sizes-{size}")
    data = os.urandom(size)
    r = s3.put_object(Bucket=f"sizes-{size}", Key="obj", Body=data, ContentType="application/x-test")
    assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=f"sizes-{size}", Key="obj")
    assert got["Body"].read() == data and got["ContentType"] == "application/x-test"
    assert got["ContentLength"] == size and got["ETag"] == r["ETag"]


def test_odd_keys_and_listing(s3: Any) -> None:
    s3.create_bucket(Bucket="keys")
    for k in KEYS:
        s3.put_object(Bucket="keys", Key=k, Body=k.encode())
    for k in KEYS:
        assert s3.get_object(Bucket="keys", Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]]
    assert listed == sorted(KEYS, key=lambda k: k.encode())
    r = s3.list_objects_v2(Bucket="keys", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["deep/", "ünï/"]
    assert [o["Key"] for o in r["Contents"]] == sorted((k for k in KEYS if "/" not in k), key=str.encode)
    r = s3.list_objects_v2(Bucket="keys", Prefix="deep/a/b/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["deep/a/b/c/"]
    # pages of 2, v1 and v2 (boto3 asks for encoding-type=url and decodes)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="keys", PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == listed
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket="keys", PaginationConfig={"PageSize": 3}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == listed
    r = s3.list_objects_v2(Bucket="keys", StartAfter="one", MaxKeys=2)
    assert [o["Key"] for o in r["Contents"]] == listed[listed.index("one") + 1:][:2] and r["IsTruncated"]
    # delete them all at once; the deep folders go with their last object
    r = s3.delete_objects(Bucket="keys", Delete={"Objects": [{"Key": k} for k in KEYS]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(KEYS)
    assert s3.list_objects_v2(Bucket="keys")["KeyCount"] == 0
    s3.delete_bucket(Bucket="keys")


def test_multipart_parallel_and_etag(s3: Any) -> None:
    s3.create_bucket(Bucket="mpu")
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123)]
    up = s3.create_multipart_upload(Bucket="mpu", Key="big/file", ContentType="video/x-test",
                                    Metadata={"who": "tester"})["UploadId"]  # fmt: skip

    def one(i: int) -> dict[str, Any]:
        r = s3.upload_part(Bucket="mpu", Key="big/file", UploadId=up, PartNumber=i + 1, Body=parts[i])
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    with ThreadPoolExecutor(3) as pool:
        done = list(pool.map(one, range(3)))
    listed = s3.list_parts(Bucket="mpu", Key="big/file", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3] and listed[2]["Size"] == 123
    assert up in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="mpu").get("Uploads", [])]
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="mpu", Key="big/file", UploadId=up,
                                     MultipartUpload={"Parts": [done[1], done[0], done[2]]})  # fmt: skip
    assert _code(e.value) == ("InvalidPartOrder", 400)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="mpu", Key="big/file", UploadId=up,
                                     MultipartUpload={"Parts": [done[0], {"PartNumber": 4, "ETag": done[0]["ETag"]}]})
    assert _code(e.value) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as e:  # nothing was stored by the failed completes
        s3.head_object(Bucket="mpu", Key="big/file")
    assert _code(e.value)[1] == 404
    r = s3.complete_multipart_upload(Bucket="mpu", Key="big/file", UploadId=up, MultipartUpload={"Parts": done})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert r["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    got = s3.get_object(Bucket="mpu", Key="big/file")
    assert got["Body"].read() == b"".join(parts) and got["ETag"] == r["ETag"]
    assert got["Metadata"] == {"who": "tester"} and got["ContentType"] == "video/x-test"
    assert s3.get_object(Bucket="mpu", Key="big/file", PartNumber=3)["Body"].read() == parts[2]
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket="mpu", Key="big/file", UploadId=up)
    assert _code(e.value) == ("NoSuchUpload", 404)
    up2 = s3.create_multipart_upload(Bucket="mpu", Key="aborted")["UploadId"]
    s3.upload_part(Bucket="mpu", Key="aborted", UploadId=up2, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="mpu", Key="aborted", UploadId=up2)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="mpu", Key="aborted")
    assert _code(e.value)[1] == 404


def test_transfer_manager_multipart_and_part_copy(s3: Any, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="tmgr")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(12 * MiB + 7))
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3.upload_file(str(src), "tmgr", "up/file.bin", Config=cfg)
    out = tmp_path / "out.bin"
    s3.download_file("tmgr", "up/file.bin", str(out), Config=cfg)
    assert out.read_bytes() == src.read_bytes()
    up = s3.create_multipart_upload(Bucket="tmgr", Key="copied")["UploadId"]
    a = s3.upload_part_copy(Bucket="tmgr", Key="copied", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": "tmgr", "Key": "up/file.bin"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    b = s3.upload_part_copy(Bucket="tmgr", Key="copied", UploadId=up, PartNumber=2,
                            CopySource={"Bucket": "tmgr", "Key": "up/file.bin"}, CopySourceRange=f"bytes={5 * MiB}-{5 * MiB + 9}")
    s3.complete_multipart_upload(Bucket="tmgr", Key="copied", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": a["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": b["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="tmgr", Key="copied")["Body"].read() == src.read_bytes()[: 5 * MiB + 10]


def test_ranges_conditions_metadata_copy(s3: Any) -> None:
    from botocore.exceptions import ClientError

    s3.create_bucket(Bucket="misc")
    data = bytes(range(256)) * 40
    r = s3.put_object(Bucket="misc", Key="f", Body=data, Metadata={"colour": "blue"}, ContentDisposition="attachment",
                      ContentEncoding="identity", CacheControl="no-cache")  # fmt: skip
    etag = r["ETag"]
    assert s3.get_object(Bucket="misc", Key="f", Range="bytes=10-19")["Body"].read() == data[10:20]
    g = s3.get_object(Bucket="misc", Key="f", Range="bytes=-5")
    assert g["Body"].read() == data[-5:] and g["ContentRange"] == f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="misc", Key="f", Range=f"bytes={len(data)}-")
    assert _code(e.value) == ("InvalidRange", 416)
    h = s3.head_object(Bucket="misc", Key="f")
    assert h["Metadata"] == {"colour": "blue"} and h["ContentDisposition"] == "attachment"
    assert h["CacheControl"] == "no-cache" and h["ContentLength"] == len(data) and h["ETag"] == etag
    s3.get_object(Bucket="misc", Key="f", IfMatch=etag)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="misc", Key="f", IfMatch='"nope"')
    assert _code(e.value)[1] == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="misc", Key="f", IfNoneMatch=etag)
    assert _code(e.value)[1] == 304 and e.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    c = s3.copy_object(Bucket="misc", Key="g/copy", CopySource={"Bucket": "misc", "Key": "f"})
    assert c["CopyObjectResult"]["ETag"] == etag
    assert s3.head_object(Bucket="misc", Key="g/copy")["Metadata"] == {"colour": "blue"}
    s3.copy_object(Bucket="misc", Key="f", CopySource={"Bucket": "misc", "Key": "f"}, MetadataDirective="REPLACE",
                   Metadata={"colour": "red"}, ContentType="text/x-new")  # fmt: skip
    h = s3.head_object(Bucket="misc", Key="f")
    assert h["Metadata"] == {"colour": "red"} and h["ContentType"] == "text/x-new"
    assert s3.get_object(Bucket="misc", Key="f")["Body"].read() == data
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="misc", Key="missing")
    assert _code(e.value) == ("NoSuchKey", 404)


def test_presigned_get_and_put(ep: Endpoint, s3: Any) -> None:
    import urllib.error
    import urllib.request

    s3.create_bucket(Bucket="pre")
    s3 = boto_client(ep, signature_version="s3v4")  # boto3 presigns with SigV2 unless told (not served)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "pre", "Key": "p q"}, ExpiresIn=300)
    req = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    try:
        assert urllib.request.urlopen(req, timeout=60).status == 200
    except urllib.error.HTTPError as err:
        raise AssertionError(err.read()) from None
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "pre", "Key": "p q"}, ExpiresIn=300)
    assert urllib.request.urlopen(get_url, timeout=60).read() == b"presigned body"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(get_url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"), timeout=60)
    assert e.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in e.value.read()


def test_bad_keys_and_tenants(ep: Endpoint, s3: Any) -> None:
    import boto3
    from botocore.exceptions import ClientError

    wrong = boto3.client("s3", endpoint_url=ep.url, aws_access_key_id=ep.access_key, aws_secret_access_key="x" * 40,
                         region_name="us-east-1")  # fmt: skip
    with pytest.raises(ClientError) as e:
        wrong.list_buckets()
    assert _code(e.value) == ("SignatureDoesNotMatch", 403)
    unknown = boto3.client("s3", endpoint_url=ep.url, aws_access_key_id="VKNOSUCHKEY", aws_secret_access_key="x",
                           region_name="us-east-1")  # fmt: skip
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert _code(e.value) == ("InvalidAccessKeyId", 403)
    s3.create_bucket(Bucket="mine")
    other = boto_client(ep, "tenant2")
    assert "mine" not in [b["Name"] for b in other.list_buckets()["Buckets"]]  # type: ignore[attr-defined]
    other.create_bucket(Bucket="mine")  # type: ignore[attr-defined]  # a separate namespace


def _raw(ep: Endpoint, data: bytes, read_timeout: float = 60) -> bytes:
    import socket

    host, port = ep.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking it all
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _signed_head(ep: Endpoint, method: str, path: str, headers: dict[str, str], payload: str) -> bytes:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    r = AWSRequest(method, ep.url + path, headers={**headers, "x-amz-content-sha256": payload})
    S3SigV4Auth(Credentials(ep.access_key, ep.secret), "s3", "us-east-1").add_auth(r)
    host = ep.url.removeprefix("http://")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in r.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_hostile_requests(ep: Endpoint, s3: Any) -> None:
    s3.create_bucket(Bucket="hostile")
    # a bad signature is refused from the head alone: the 64 MiB the client announces are never read
    head = _signed_head(ep, "PUT", "/hostile/big", {"Content-Length": str(64 * MiB)}, "UNSIGNED-PAYLOAD")
    sig = head.split(b"Signature=")[1][:64]
    bad = head.replace(sig, (b"0" if sig[:1] != b"0" else b"1") + sig[1:])
    out = _raw(ep, bad + b"x" * 65536)
    assert out.startswith(b"HTTP/1.1 403") and b"<Code>SignatureDoesNotMatch</Code>" in out and b"RequestId" in out
    # huge headers: 431 in S3's XML
    out = _raw(ep, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431") and b"<Code>RequestHeaderSectionTooLarge</Code>" in out
    # a Content-Length that lies (the body stops short): nothing is stored, the server lives on
    head = _signed_head(ep, "PUT", "/hostile/short", {"Content-Length": "100000"}, "UNSIGNED-PAYLOAD")
    _raw(ep, head + b"y" * 1000)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="hostile", Key="short")
    assert _code(e.value)[1] == 404
    # a signed payload whose hash does not match the body
    body = b"real body"
    head = _signed_head(ep, "PUT", "/hostile/hash", {"Content-Length": str(len(body))}, hashlib.sha256(b"other").hexdigest())
    out = _raw(ep, head + body)
    assert out.startswith(b"HTTP/1.1 400") and b"XAmzContentSHA256Mismatch" in out
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="hostile", Key="hash")
    assert _code(e.value)[1] == 404
    # Content-MD5 that does not match: BadDigest, nothing stored
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="hostile", Key="md5", Body=b"abc", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert _code(e.value) == ("BadDigest", 400)
    # a part list of 10,001 entries, and missing parts
    up = s3.create_multipart_upload(Bucket="hostile", Key="mp")["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="hostile", Key="mp", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": i, "ETag": '"00"'} for i in range(1, 10002)]})
    assert _code(e.value)[0] in ("InvalidArgument", "MalformedXML")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket="hostile", Key="mp", UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})  # fmt: skip
    assert _code(e.value) == ("InvalidPart", 400)
    s3.put_object(Bucket="hostile", Key="still-ok", Body=b"fine")
    assert s3.get_object(Bucket="hostile", Key="still-ok")["Body"].read() == b"fine"


def _sign_raw(ep: Endpoint, method: str, path: str, headers: dict[str, str], when: Any) -> tuple[bytes, Any]:
    """A request head signed by hand (veil.s3.sigv4, checked against AWS's vectors) at ``when``."""
    from veil.net.http1 import Headers
    from veil.s3 import sigv4

    host = ep.url.removeprefix("http://")
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    fields = [("Host", host), ("x-amz-date", amz), *headers.items()]
    signed = sorted(k.lower() for k, _ in fields)
    req = sigv4.SignedRequest(method, path, [], Headers(fields))
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(ep.secret, amz[:8], "us-east-1", "s3")
    payload = headers["x-amz-content-sha256"]
    sig = sigv4.sign(key, sigv4.string_to_sign(amz, scope, sigv4.canonical_request(req, signed, payload)))
    auth = f"AWS4-HMAC-SHA256 Credential={ep.access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields), f"Authorization: {auth}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), (key, amz, scope, sig)


def test_skewed_clock_and_chunked_upload(ep: Endpoint, s3: Any) -> None:
    """A request signed 20 minutes ago is refused; an aws-chunked signed body (the SDKs'
    streaming mode) round-trips, and one with a tampered chunk is refused and stores nothing."""
    import datetime as dt

    from botocore.exceptions import ClientError

    from veil.s3 import sigv4

    now = dt.datetime.now(dt.UTC)
    head, _ = _sign_raw(ep, "GET", "/", {"x-amz-content-sha256": sigv4.EMPTY_SHA256}, now - dt.timedelta(minutes=20))
    out = _raw(ep, head)
    assert out.startswith(b"HTTP/1.1 403") and b"<Code>RequestTimeTooSkewed</Code>" in out
    s3.create_bucket(Bucket="chunked")
    data = os.urandom(200_000)

    def body(seed: tuple[bytes, str, str, str], tamper: bool) -> bytes:
        key, amz, scope, prev = seed
        out = b""
        for piece in (data[:65536], data[65536:131072], data[131072:], b""):
            sig = sigv4.sign(key, sigv4.chunk_string_to_sign(amz, scope, prev, hashlib.sha256(piece).hexdigest()))
            prev = sig
            sent = (b"X" + piece[1:]) if tamper and piece and piece is not data[:65536] else piece
            out += f"{len(piece):x};chunk-signature={sig}\r\n".encode() + sent + b"\r\n"
        return out

    for key, tamper in (("ok", False), ("bad", True)):
        length = len(body((b"k" * 32, "d", "s", "0" * 64), False))
        head, seed = _sign_raw(ep, "PUT", f"/chunked/{key}", {
            "x-amz-content-sha256": sigv4.STREAMING, "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)), "Content-Length": str(length)}, now)
        out = _raw(ep, head + body(seed, tamper))
        if tamper:
            assert out.startswith(b"HTTP/1.1 403") and b"SignatureDoesNotMatch" in out
        else:
            assert out.startswith(b"HTTP/1.1 200"), out[:300]
    assert s3.get_object(Bucket="chunked", Key="ok")["Body"].read() == data
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="chunked", Key="bad")
    assert _code(e.value)[1] == 404


def test_parallel_puts_and_deletes_lose_nothing(s3: Any) -> None:
    """Concurrent PUTs into one folder go in as batched folder versions; none is lost, and
    deleting a prefix's last objects while others are put under it loses none of the new ones."""
    s3.create_bucket(Bucket="par")
    keys = [f"d/k{i:02d}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="par", Key=k, Body=k.encode()), keys))
    got = [o["Key"] for o in s3.list_objects_v2(Bucket="par")["Contents"]]
    assert got == keys
    more = [f"d/n{i:02d}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(s3.delete_object, Bucket="par", Key=k) for k in keys]
        jobs += [pool.submit(s3.put_object, Bucket="par", Key=k, Body=b"new") for k in more]
        for j in jobs:
            j.result()
    got = [o["Key"] for o in s3.list_objects_v2(Bucket="par").get("Contents", [])]
    assert got == more
    assert all(s3.get_object(Bucket="par", Key=k)["Body"].read() == b"new" for k in more)
