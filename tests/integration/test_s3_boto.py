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
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="life")
    assert _code(e.value) == ("BucketAlreadyOwnedByYou", 409)
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
    assert _code(e.value)[1] == 304
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
