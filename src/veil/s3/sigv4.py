"""AWS Signature Version 4 verification for S3, sans I/O (docs/specs/s3.md, "Authentication").

``verify(req, secret_of, now)`` checks a request head — signed in the ``Authorization`` header
or presigned in the query string — before any body byte is read, and returns what the body
reader needs next: the payload mode (a hex SHA-256 to check at the end, unsigned, or
``aws-chunked`` with per-chunk signatures and maybe trailers) and the signing key and seed
signature for chunk signatures. Canonical request, string to sign and key derivation follow
the SigV4 reference; ``tests/vectors/sigv4_aws.json`` holds AWS's published examples.

Imports from: veil.s3.errors (and the standard library).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, unquote

from veil.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING, STREAMING_TRAILER, STREAMING_UNSIGNED_TRAILER)
MAX_SKEW = 15 * 60  # seconds, as S3
MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL lives at most a week, as S3
_HEX64 = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class HeadersLike(Protocol):
    """What ``verify`` needs of a request's headers (``veil.net.http1.Headers`` has it)."""

    def get(self, name: str) -> str | None: ...
    def get_all(self, name: str) -> list[str]: ...


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str  # the raw path, as sent (percent-encoded)
    query: Sequence[tuple[str, str]]  # decoded name/value pairs, in arrival order
    headers: HeadersLike


@dataclass(frozen=True)
class Verified:
    """An authenticated request head: who sent it and how its body is to be checked."""

    access_key: str
    payload: str  # a 64-hex SHA-256, UNSIGNED, or one of STREAMING_MODES
    signing_key: bytes
    seed_signature: str
    amz_date: str
    scope: str


def uri_encode(text: str, keep_slash: bool) -> str:
    """SigV4's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ (and ``/`` in a path) as %XX."""
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_uri(raw_path: str) -> str:
    """S3 paths are encoded once, not normalised: decode what the client sent, encode it strictly."""
    return uri_encode(unquote(raw_path), keep_slash=True) or "/"


def canonical_query(pairs: Sequence[tuple[str, str]], drop: str | None = None) -> str:
    enc = sorted((uri_encode(k, False), uri_encode(v, False)) for k, v in pairs if k != drop)
    return "&".join(f"{k}={v}" for k, v in enc)


def _header_value(values: list[str]) -> str:
    return ",".join(" ".join(v.strip().split()) for v in values)


def canonical_request(req: SignedRequest, signed: list[str], payload: str, drop_query: str | None = None) -> str:
    lines = [f"{h}:{_header_value(req.headers.get_all(h))}\n" for h in signed]
    return "\n".join([req.method, canonical_uri(req.path), canonical_query(req.query, drop_query),
                      "".join(lines), ";".join(signed), payload])  # fmt: skip


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Parts:
    access_key: str
    date: str
    region: str
    service: str
    signed: list[str]
    signature: str
    amz_date: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _credential(value: str, code: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0] or not re.fullmatch(r"\d{8}", parts[1]):
        raise S3Error(code, "the Credential must be ACCESSKEY/YYYYMMDD/REGION/s3/aws4_request")
    if parts[3] != "s3":
        raise S3Error(code, f"the credential's service must be 's3', not {parts[3][:20]!r}")
    return parts[0], parts[1], parts[2], parts[3]


def _signed_headers(value: str, code: str) -> list[str]:
    names = value.split(";")
    if not value or any(not n or n != n.lower() for n in names) or names != sorted(names):
        raise S3Error(code, "SignedHeaders must be lowercase names, sorted, separated by ';'")
    if "host" not in names:
        raise S3Error(code, "the host header must be signed")
    return names


def parse_authorization(value: str) -> tuple[str, str, str, str, list[str], str]:
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` into its parts."""
    code = "AuthorizationHeaderMalformed"
    algo, _, rest = value.strip().partition(" ")
    if algo != ALGORITHM:
        raise S3Error("InvalidArgument" if algo.startswith("AWS") else code,
                      "only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported")  # fmt: skip
    fields: dict[str, str] = {}
    for item in rest.split(","):
        k, eq, v = item.strip().partition("=")
        if not eq or k in fields:
            raise S3Error(code, "the Authorization header is malformed")
        fields[k] = v
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise S3Error(code, "the Authorization header needs Credential, SignedHeaders and Signature")
    ak, date, region, service = _credential(fields["Credential"], code)
    if not _HEX64.fullmatch(fields["Signature"]):
        raise S3Error(code, "the signature must be 64 lowercase hex digits")
    return ak, date, region, service, _signed_headers(fields["SignedHeaders"], code), fields["Signature"]


def _parse_amz_date(text: str, code: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        raise S3Error(code, "X-Amz-Date must look like 20240101T000000Z") from None


def is_presigned(query: Sequence[tuple[str, str]]) -> bool:
    return any(k == "X-Amz-Algorithm" for k, _ in query)


def is_anonymous(req: SignedRequest) -> bool:
    return req.headers.get("Authorization") is None and not is_presigned(req.query) and not any(
        k in ("AWSAccessKeyId", "Signature") for k, _ in req.query)


def verify(req: SignedRequest, secret_of: Callable[[str], str | None], now: dt.datetime) -> Verified:
    """Check the signature of ``req``; S3Error with S3's code on any failure."""
    q = dict(req.query)
    if req.headers.get("Authorization") is not None:
        if is_presigned(req.query):
            raise S3Error("InvalidArgument", "only one auth mechanism allowed: header or query string")
        return _verify_header(req, secret_of, now)
    if is_presigned(req.query):
        return _verify_presigned(req, q, secret_of, now)
    if "Signature" in q or "AWSAccessKeyId" in q:
        raise S3Error("InvalidArgument", "AWS Signature Version 2 is not supported; use Signature Version 4")
    raise S3Error("AccessDenied", "anonymous requests are not allowed: sign the request (SigV4)")


def _verify_header(req: SignedRequest, secret_of: Callable[[str], str | None], now: dt.datetime) -> Verified:
    auth = req.headers.get("Authorization") or ""
    if auth.startswith("AWS "):
        raise S3Error("InvalidArgument", "AWS Signature Version 2 is not supported; use Signature Version 4")
    ak, date, region, service, signed, signature = parse_authorization(auth)
    amz_date = req.headers.get("x-amz-date")
    if amz_date is None:
        if req.headers.get("Date") is None:
            raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
        raise S3Error("AccessDenied", "SigV4 needs the x-amz-date header")
    when = _parse_amz_date(amz_date, "AccessDenied")
    if amz_date[:8] != date:
        raise S3Error("SignatureDoesNotMatch", "the credential's date does not match X-Amz-Date")
    if abs((now - when).total_seconds()) > MAX_SKEW:
        raise S3Error("RequestTimeTooSkewed", "the difference between the request time and the server's time is too large")
    payload = req.headers.get("x-amz-content-sha256")
    if payload is None:
        raise S3Error("InvalidRequest", "missing required header for this request: x-amz-content-sha256")
    if payload not in (UNSIGNED, *STREAMING_MODES) and not _HEX64.fullmatch(payload):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* mode or a SHA-256")
    for h in signed:
        if not req.headers.get_all(h):
            raise S3Error("AccessDenied", f"signed header {h[:40]!r} is missing from the request")
    secret = secret_of(ak)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", "the access key id you provided does not exist in our records")
    key = signing_key(secret, date, region, service)
    parts = _Parts(ak, date, region, service, signed, signature, amz_date)
    expect = sign(key, string_to_sign(amz_date, parts.scope, canonical_request(req, signed, payload)))
    if not hmac.compare_digest(expect, signature):
        raise S3Error("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
    return Verified(ak, payload, key, signature, amz_date, parts.scope)


def _verify_presigned(req: SignedRequest, q: dict[str, str], secret_of: Callable[[str], str | None],
                      now: dt.datetime) -> Verified:  # fmt: skip
    code = "AuthorizationQueryParametersError"
    if q.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(code, "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if name not in q:
            raise S3Error(code, f"a presigned request needs {name}")
    ak, date, region, service = _credential(q["X-Amz-Credential"], code)
    signed = _signed_headers(q["X-Amz-SignedHeaders"], code)
    when = _parse_amz_date(q["X-Amz-Date"], code)
    raw = q["X-Amz-Expires"]
    if raw.startswith("-") and raw[1:].isdigit():
        raise S3Error("AccessDenied", "Request has expired")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        raise S3Error(code, "X-Amz-Expires must be a number of seconds")
    expires = int(raw)
    if expires > MAX_EXPIRES:
        raise S3Error(code, "X-Amz-Expires must be less than a week (604800 seconds)")
    if q["X-Amz-Date"][:8] != date:
        raise S3Error("SignatureDoesNotMatch", "the credential's date does not match X-Amz-Date")
    if (when - now).total_seconds() > MAX_SKEW:
        raise S3Error("AccessDenied", "request is not valid yet")
    if (now - when).total_seconds() > expires:
        raise S3Error("AccessDenied", "Request has expired")
    signature = q["X-Amz-Signature"]
    secret = secret_of(ak)
    if secret is None:
        raise S3Error("InvalidAccessKeyId", "the access key id you provided does not exist in our records")
    key = signing_key(secret, date, region, service)
    payload = req.headers.get("x-amz-content-sha256") if "x-amz-content-sha256" in signed else None
    payload = payload or UNSIGNED
    scope = f"{date}/{region}/{service}/aws4_request"
    expect = sign(key, string_to_sign(q["X-Amz-Date"], scope,
                                      canonical_request(req, signed, payload, drop_query="X-Amz-Signature")))
    if not hmac.compare_digest(expect, signature):
        raise S3Error("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
    if payload in STREAMING_MODES:
        raise S3Error("InvalidRequest", "a presigned request cannot stream aws-chunked bodies")
    return Verified(ak, payload, key, signature, q["X-Amz-Date"], scope)


def chunk_string_to_sign(amz_date: str, scope: str, previous: str, chunk_sha256: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256, chunk_sha256])


def trailer_string_to_sign(amz_date: str, scope: str, previous: str, trailer_sha256: str) -> str:
    return "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous, trailer_sha256])
