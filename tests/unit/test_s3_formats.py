"""The S3 endpoint's pure parts: aws-chunked trailers, checksums, XML, listings, ETags,
conditions and ranges."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.s3 import xmlio
from veil.s3.checksums import Checksum, check
from veil.s3.chunked import ChunkDecoder, ChunkSigning
from veil.s3.conditions import byte_range, evaluate
from veil.s3.errors import S3Error
from veil.s3.etag import multipart_etag
from veil.s3.listing import decode_token, encode_token, paginate
from veil.s3.sigv4 import EMPTY_SHA256, chunk_string_to_sign, sign, trailer_string_to_sign


def test_unsigned_trailer_body_as_botocore_sends_it() -> None:
    data = b"x" * 70000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    dec = ChunkDecoder(None, trailer=True)
    out = b"".join(bytes(p) for i in range(0, len(body), 7) for p in dec.feed(body[i:i + 7]))
    assert dec.done and out == data and dec.trailers == {"x-amz-checksum-crc32": crc}
    c = Checksum("crc32")
    c.update(out)
    check("crc32", dec.trailers["x-amz-checksum-crc32"], c)
    c.update(b"!")
    with pytest.raises(S3Error) as e:
        check("crc32", crc, c)
    assert e.value.code == "BadDigest"


def test_signed_trailer_and_tampered_trailer() -> None:
    s = ChunkSigning(b"k" * 32, "20240101T000000Z", "20240101/us-east-1/s3/aws4_request", "0" * 64)
    data = b"hello"
    sig1 = sign(s.key, chunk_string_to_sign(s.amz_date, s.scope, s.seed, hashlib.sha256(data).hexdigest()))
    sig0 = sign(s.key, chunk_string_to_sign(s.amz_date, s.scope, sig1, EMPTY_SHA256))
    trailer = "x-amz-checksum-crc32c:AAAAAA==\n"
    tsig = sign(s.key, trailer_string_to_sign(s.amz_date, s.scope, sig0, hashlib.sha256(trailer.encode()).hexdigest()))

    def body(t: str) -> bytes:
        return (f"5;chunk-signature={sig1}\r\nhello\r\n0;chunk-signature={sig0}\r\n"
                f"{t.strip()}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n").encode()

    dec = ChunkDecoder(s, trailer=True)
    assert b"".join(bytes(p) for p in dec.feed(body(trailer))) == data and dec.done
    with pytest.raises(S3Error) as e:
        ChunkDecoder(s, trailer=True).feed(body("x-amz-checksum-crc32c:AAAAAB=="))
    assert e.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\nhelloXX\r\n", b"5\nhello\r\n", b"1" * 5000,
                                  b"5;chunk-signature=" + b"0" * 64 + b"\r\nhello\r\n"])
def test_malformed_chunked_bodies(body: bytes) -> None:
    signing = ChunkSigning(b"k" * 32, "d", "s", "0" * 64) if b"signature" in body else None
    with pytest.raises(S3Error):
        ChunkDecoder(signing, trailer=False).feed(body)


@pytest.mark.parametrize("algo,fn", [("sha256", lambda d: hashlib.sha256(d).digest()),
                                     ("crc32", lambda d: zlib.crc32(d).to_bytes(4, "big"))])
def test_checksums(algo: str, fn: object) -> None:
    c = Checksum(algo)
    c.update(b"abc")
    assert c.value() == base64.b64encode(fn(b"abc")).decode()  # type: ignore[operator]
    crc = Checksum("crc32c")
    crc.update(b"123456789")
    assert crc.value() == base64.b64encode(bytes.fromhex("e3069283")).decode()  # the CRC-32C check value
    with pytest.raises(S3Error):
        Checksum("md4")


def test_xml_render_escapes_and_parse_refuses_entities() -> None:
    out = xmlio.render("ListBucketResult", [("Name", "a<b&c"), ("IsTruncated", False), ("Skip", None),
                                            ("Contents", [("Key", "]]>\"'")])])  # fmt: skip
    root = xmlio.parse(out, "ListBucketResult")
    assert xmlio.child_text(root, "Name") == "a<b&c" and xmlio.child_text(root, "Skip") is None
    assert xmlio.child_text(xmlio.children(root, "Contents")[0], "Key") == "]]>\"'"
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Delete>&b;</Delete>'
    with pytest.raises(S3Error) as e:
        xmlio.parse(bomb, "Delete")
    assert e.value.code == "MalformedXML"
    with pytest.raises(S3Error):
        xmlio.parse(b"<Delete><Object>", "Delete")
    objs, quiet = xmlio.parse_delete(b"<Delete xmlns='x'><Quiet>true</Quiet><Object><Key>a b</Key></Object></Delete>")
    assert objs == [("a b", None)] and quiet
    parts = xmlio.parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>\"e\"</ETag></Part>"
                                 b"</CompleteMultipartUpload>")
    assert parts == [(2, '"e"')]
    many = b"<CompleteMultipartUpload>" + b"<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>" * 10001 + b"</CompleteMultipartUpload>"
    with pytest.raises(S3Error) as e:
        xmlio.parse_complete(many)
    assert e.value.code == "InvalidArgument"


KEYS = ["a", "a/b", "a/c/d", "a/c/e", "b", "b/", "c+d", "d e/f"]


def test_listing_delimiter_markers_and_pages() -> None:
    items = [(k, k) for k in KEYS]
    p = paginate(items, "", "/", "", 1000)
    assert [k for k, _ in p.contents] == ["a", "b", "c+d"] and p.prefixes == ["a/", "b/", "d e/"]
    p = paginate(items, "a/", "/", "", 1000)
    assert [k for k, _ in p.contents] == ["a/b"] and p.prefixes == ["a/c/"]
    p = paginate(items, "", "/", "", 2)
    assert p.truncated and p.last == "a/"
    p2 = paginate(items, "", "/", p.last or "", 2)
    assert [k for k, _ in p2.contents] == ["b"] and p2.prefixes == ["b/"] and p2.truncated
    p = paginate(items, "", "", "a/c/d", 1000)
    assert [k for k, _ in p.contents] == ["a/c/e", "b", "b/", "c+d", "d e/f"] and not p.truncated
    assert paginate(items, "", "", "", 0).contents == []
    # a collapsed subtree stands for its common prefix and never for a key
    p = paginate([("a", "a"), ("a/", None), ("b", "b")], "", "/", "", 10)
    assert p.prefixes == ["a/"] and [k for k, _ in p.contents] == ["a", "b"]


@given(st.lists(st.text(alphabet="ab/c", min_size=1, max_size=6), unique=True), st.integers(1, 4),
       st.sampled_from(["", "/", "b"]), st.sampled_from(["", "a", "a/"]))
def test_listing_pages_cover_everything_once(keys: list[str], size: int, delim: str, prefix: str) -> None:
    items = [(k, k) for k in sorted(keys)]
    whole = paginate(items, prefix, delim, "", 10**6)
    seen_keys: list[str] = []
    seen_prefixes: list[str] = []
    after = ""
    while True:
        p = paginate(items, prefix, delim, after, size)
        seen_keys += [k for k, _ in p.contents]
        seen_prefixes += p.prefixes
        if not p.truncated:
            break
        assert p.last is not None
        after = p.last
    assert seen_keys == [k for k, _ in whole.contents] and seen_prefixes == whole.prefixes


def test_tokens_round_trip_and_garbage() -> None:
    assert decode_token(encode_token("ü/+ %")) == "ü/+ %"
    with pytest.raises(S3Error):
        decode_token("!!!")


def test_multipart_etag() -> None:
    a, b = hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()
    want = hashlib.md5(bytes.fromhex(a) + bytes.fromhex(b)).hexdigest() + "-2"
    assert multipart_etag([f'"{a}"', b]) == f'"{want}"'


def test_conditions() -> None:
    h = {"if-match": '"abc"'}
    evaluate(h.get, '"abc"', 100, True)
    with pytest.raises(S3Error) as e:
        evaluate({"if-match": '"x"'}.get, '"abc"', 100, True)
    assert e.value.status == 412
    with pytest.raises(S3Error) as e:
        evaluate({"if-none-match": '"abc"'}.get, '"abc"', 100, True)
    assert e.value.status == 304
    with pytest.raises(S3Error) as e:
        evaluate({"if-modified-since": "Thu, 01 Jan 2099 00:00:00 GMT"}.get, '"abc"', 100, True)
    assert e.value.status == 304
    evaluate({"if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT"}.get, '"abc"', 100, True)
    with pytest.raises(S3Error) as e:
        evaluate({"if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT"}.get, '"abc"', 100, True)
    assert e.value.status == 412


def test_ranges() -> None:
    assert byte_range("bytes=0-9", 100) == (0, 10)
    assert byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=-10", 100) == (90, 100)
    assert byte_range("bytes=-500", 100) == (0, 100)
    assert byte_range("bytes=5-1000", 100) == (5, 100)
    assert byte_range(None, 100) is None and byte_range("items=1-2", 100) is None
    with pytest.raises(S3Error) as e:
        byte_range("bytes=100-", 100)
    assert e.value.status == 416
