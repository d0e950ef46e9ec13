"""SigV4 verification against AWS's published examples, botocore's signer, and tampering."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from veil.net.http1 import Headers
from veil.s3.chunked import ChunkDecoder, ChunkSigning
from veil.s3.errors import S3Error
from veil.s3.sigv4 import SignedRequest, verify

V = json.loads((Path(__file__).parents[1] / "vectors" / "sigv4_aws.json").read_text())
NOW = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
SECRETS = {V["access_key"]: V["secret_key"]}


def _auth(signed: str, sig: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential={V['access_key']}/20130524/us-east-1/s3/aws4_request, "
            f"SignedHeaders={signed}, Signature={sig}")


def _req(case: dict, sig: str | None = None, **changes: object) -> SignedRequest:
    headers = [tuple(h) for h in case["headers"]] + [("Authorization", _auth(case["signed"], sig or case["signature"]))]
    base = {"method": case["method"], "path": case["path"], "query": [tuple(q) for q in case["query"]],
            "headers": Headers(headers)}
    base.update(changes)
    return SignedRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", V["header"], ids=lambda c: c["name"])
def test_aws_header_examples_verify(case: dict) -> None:
    got = verify(_req(case), SECRETS.get, NOW)
    assert got.access_key == V["access_key"]
    assert got.seed_signature == case["signature"]


@pytest.mark.parametrize("case", V["header"], ids=lambda c: c["name"])
def test_tampering_any_part_fails(case: dict) -> None:
    with pytest.raises(S3Error) as e:
        verify(_req(case, method="DELETE"), SECRETS.get, NOW)
    assert e.value.code == "SignatureDoesNotMatch" and e.value.status == 403
    with pytest.raises(S3Error) as e:
        verify(_req(case, path=case["path"] + "x"), SECRETS.get, NOW)
    assert e.value.code == "SignatureDoesNotMatch"
    flipped = case["signature"][:-1] + ("0" if case["signature"][-1] != "0" else "1")
    with pytest.raises(S3Error) as e:
        verify(_req(case, sig=flipped), SECRETS.get, NOW)
    assert e.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as e:
        verify(_req(case, query=[("extra", "1"), *[tuple(q) for q in case["query"]]]), SECRETS.get, NOW)
    assert e.value.code == "SignatureDoesNotMatch"


def test_unknown_key_skew_and_malformed() -> None:
    case = V["header"][0]
    with pytest.raises(S3Error) as e:
        verify(_req(case), {}.get, NOW)
    assert e.value.code == "InvalidAccessKeyId" and e.value.status == 403
    with pytest.raises(S3Error) as e:
        verify(_req(case), SECRETS.get, NOW + dt.timedelta(minutes=16))
    assert e.value.code == "RequestTimeTooSkewed" and e.value.status == 403
    verify(_req(case), SECRETS.get, NOW + dt.timedelta(minutes=14))
    bad = SignedRequest("GET", "/", [], Headers([("Host", "h"), ("Authorization", "AWS4-HMAC-SHA256 garbage")]))
    with pytest.raises(S3Error) as e:
        verify(bad, SECRETS.get, NOW)
    assert e.value.code == "AuthorizationHeaderMalformed"
    v2 = SignedRequest("GET", "/", [], Headers([("Host", "h"), ("Authorization", "AWS AKIA:abc=")]))
    with pytest.raises(S3Error) as e:
        verify(v2, SECRETS.get, NOW)
    assert e.value.code == "InvalidArgument"
    anon = SignedRequest("GET", "/", [], Headers([("Host", "h")]))
    with pytest.raises(S3Error) as e:
        verify(anon, SECRETS.get, NOW)
    assert e.value.code == "AccessDenied"


def _presigned(query: list[tuple[str, str]]) -> SignedRequest:
    p = V["presigned"]
    return SignedRequest(p["method"], p["path"], query, Headers([("Host", p["host"])]))


def test_aws_presigned_example_and_expiry() -> None:
    q = [tuple(x) for x in V["presigned"]["query"]]
    assert verify(_presigned(q), SECRETS.get, NOW + dt.timedelta(hours=23)).payload == "UNSIGNED-PAYLOAD"
    with pytest.raises(S3Error) as e:
        verify(_presigned(q), SECRETS.get, NOW + dt.timedelta(hours=24, seconds=1))
    assert e.value.code == "AccessDenied" and "expired" in e.value.message
    longer = [(k, "86401" if k == "X-Amz-Expires" else v) for k, v in q]
    with pytest.raises(S3Error) as e:
        verify(_presigned(longer), SECRETS.get, NOW)
    assert e.value.code == "SignatureDoesNotMatch"
    negative = [(k, "-1000" if k == "X-Amz-Expires" else v) for k, v in q]
    with pytest.raises(S3Error) as e:
        verify(_presigned(negative), SECRETS.get, NOW)
    assert e.value.code == "AccessDenied" and e.value.status == 403
    too_long = [(k, "604801" if k == "X-Amz-Expires" else v) for k, v in q]
    with pytest.raises(S3Error) as e:
        verify(_presigned(too_long), SECRETS.get, NOW)
    assert e.value.code == "AuthorizationQueryParametersError"


def _stream_body(s: dict, tamper_chunk: int | None = None) -> bytes:
    out = b""
    for i, (size, sig) in enumerate(s["chunks"]):
        data = s["byte"].encode() * size
        if i == tamper_chunk and size:
            data = b"b" + data[1:]
        out += f"{size:x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"
    return out


def test_aws_streaming_example() -> None:
    s = V["streaming"]
    case = {**s, "query": [], "signature": s["seed_signature"]}
    got = verify(_req(case), SECRETS.get, NOW)
    assert got.payload == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    body = _stream_body(s)
    assert len(body) == 66824
    dec = ChunkDecoder(ChunkSigning(got.signing_key, got.amz_date, got.scope, got.seed_signature), trailer=False)
    data = b""
    for i in range(0, len(body), 999):  # any split of the body into reads
        data += b"".join(bytes(p) for p in dec.feed(body[i:i + 999]))
    assert dec.done and data == b"a" * 66560
    dec = ChunkDecoder(ChunkSigning(got.signing_key, got.amz_date, got.scope, got.seed_signature), trailer=False)
    with pytest.raises(S3Error) as e:
        dec.feed(_stream_body(s, tamper_chunk=1))
    assert e.value.code == "SignatureDoesNotMatch"


def test_botocore_signer_agrees() -> None:
    """An independent implementation: botocore's S3SigV4Auth and presigner."""
    from urllib.parse import parse_qsl, urlsplit

    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials("AKIDVEIL", "s3cr3t/with+chars")
    now = dt.datetime.now(dt.UTC)
    key = "dir/a key+with%odd ü chars~.txt"
    from urllib.parse import quote
    url = f"http://127.0.0.1:9000/bucket/{quote(key, safe='/~')}?uploadId=a%2Fb&partNumber=3"
    r = AWSRequest("PUT", url, data=b"hello", headers={"Content-Type": "text/plain", "x-amz-meta-Who": "  a   b "})
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(r)
    parts = urlsplit(r.url)
    hdrs = Headers([("Host", "127.0.0.1:9000"), *[(k, v) for k, v in r.headers.items()]])
    got = verify(SignedRequest("PUT", parts.path, parse_qsl(parts.query, keep_blank_values=True), hdrs),
                 {"AKIDVEIL": "s3cr3t/with+chars"}.get, now)
    assert got.access_key == "AKIDVEIL"
    r = AWSRequest("GET", url, headers={})
    S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=60).add_auth(r)
    parts = urlsplit(r.url)
    got = verify(SignedRequest("GET", parts.path, parse_qsl(parts.query, keep_blank_values=True),
                               Headers([("Host", "127.0.0.1:9000")])), {"AKIDVEIL": "s3cr3t/with+chars"}.get, now)
    assert got.payload == "UNSIGNED-PAYLOAD"
