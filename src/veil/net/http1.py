"""A strict, sans-I/O parser for HTTP/1.1 request heads (RFC 9112), the only one Veil's servers use.

``parse_head(buf)`` takes the bytes received so far and returns ``None`` (need more), a
``RequestHead`` with the number of bytes it used, or raises ``HeadError`` with the status to
answer before closing. It never touches a socket, so every rejection is unit-tested without one
(tests/unit/test_http1.py). Bodies are not parsed here: a request body is exactly
``Content-Length`` bytes that the handler reads straight from the socket into its own buffer.

Rejected, each with the status RFC 9112 / RFC 9110 call for: a request line over
``MAX_LINE`` (414), a header block over ``MAX_HEAD`` or more than ``MAX_FIELDS`` fields (431),
an HTTP version other than 1.0/1.1 and the HTTP/2 preface (505), any ``Transfer-Encoding``
(501: not implemented; 400 together with ``Content-Length`` or in HTTP/1.0, the smuggling
cases of §6.1), a missing (HTTP/1.1) or repeated ``Host``, a repeated or malformed
``Content-Length``, obs-fold, bare CR or LF, control characters, invalid field names, whitespace
before the colon, and an absolute-form target whose authority disagrees with ``Host``.

Imports only the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import overload

MAX_LINE = 8 * 1024  # request line, CRLF excluded
MAX_HEAD = 16 * 1024  # request line + header fields, final CRLFCRLF included
MAX_FIELDS = 100
MAX_CONTENT_LENGTH_DIGITS = 15  # 10^15 bytes: far past any body a handler accepts

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# field-value: VCHAR / obs-text / SP / HTAB (RFC 9110 §5.5); no CR, LF, NUL or other controls.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# request-target: visible ASCII only (RFC 9112 §3.2; no spaces, controls or raw non-ASCII).
_TARGET = re.compile(rb"[\x21-\x7e]+")
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")


class HeadError(Exception):
    """A request head the server will not serve: answer ``status`` and close the connection."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Headers:
    """Header fields in arrival order, looked up case-insensitively (first occurrence wins)."""

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields = fields or []
        self._index: dict[str, str] = {}
        for k, v in self._fields:
            self._index.setdefault(k.lower(), v)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._index.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._fields if k.lower() == low]

    def __getitem__(self, name: str) -> str | None:
        # like email.message.Message (the stdlib's HTTPMessage): a missing field is None
        return self._index.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [k for k, _ in self._fields]

    def values(self) -> list[str]:
        return [v for _, v in self._fields]

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str  # origin-form (path and query) after absolute-form is reduced; "*" for OPTIONS *
    version: tuple[int, int]
    headers: Headers
    content_length: int
    keep_alive: bool
    expect_continue: bool


def _fail(status: int, message: str) -> HeadError:
    codes = {400: "bad_request", 414: "uri_too_long", 431: "headers_too_large",
             501: "not_implemented", 505: "version_not_supported", 417: "expectation_failed"}
    return HeadError(status, codes.get(status, "bad_request"), message)


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the CRLFCRLF ending the head, or -1; ``start`` lets a caller resume a scan."""
    i = buf.find(b"\r\n\r\n", max(0, start - 3))
    return -1 if i < 0 else i + 4


def parse_head(buf: bytes | bytearray) -> tuple[RequestHead, int] | None:
    """Parse the request head at the start of ``buf``; ``None`` if it is not complete yet.

    Returns the head and how many bytes of ``buf`` it used (the rest is body or the next
    request). Raises ``HeadError`` as soon as the bytes so far cannot become a valid head, so a
    hostile peer never gets to fill a buffer past the limits.
    """
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    skip = 0
    while buf.startswith(b"\r\n", skip) and skip < 8:
        skip += 2
    eol = buf.find(b"\r\n", skip)
    if eol < 0:
        if len(buf) - skip > MAX_LINE:
            raise _fail(414, f"request line over {MAX_LINE} bytes")
        if b"\n" in buf[skip:] or b"\r" in buf[skip:-1]:
            raise _fail(400, "request line not ended by CRLF")
        return None
    if eol - skip > MAX_LINE:
        raise _fail(414, f"request line over {MAX_LINE} bytes")
    end = head_end(buf, eol)
    if end < 0:
        if len(buf) - skip > MAX_HEAD:
            raise _fail(431, f"request head over {MAX_HEAD} bytes")
        _check_request_line(bytes(buf[skip:eol]))  # fail early on a garbage line
        return None
    if end - skip > MAX_HEAD:
        raise _fail(431, f"request head over {MAX_HEAD} bytes")
    return _parse(bytes(buf[skip:end - 4])), end


def _check_request_line(line: bytes) -> tuple[str, bytes, tuple[int, int]]:
    if line.startswith(b"PRI * HTTP/2.0"):
        raise _fail(505, "HTTP/2 is not served here; use HTTP/1.1")
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        raise _fail(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or len(method) > 32:
        raise _fail(400, "malformed method")
    if not _TARGET.fullmatch(target):
        raise _fail(400, "malformed request target")
    mv = _VERSION.fullmatch(version)
    if mv is None:
        raise _fail(400, "malformed HTTP version")
    ver = (int(mv.group(1)), int(mv.group(2)))
    if ver not in ((1, 0), (1, 1)):
        raise _fail(505, f"HTTP/{ver[0]}.{ver[1]} is not supported; use HTTP/1.1")
    return method.decode("ascii"), target, ver


def _parse(head: bytes) -> RequestHead:
    lines = head.split(b"\r\n")
    method, raw_target, version = _check_request_line(lines[0])
    if len(lines) - 1 > MAX_FIELDS:
        raise _fail(431, f"more than {MAX_FIELDS} header fields")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if b"\r" in line or b"\n" in line:
            raise _fail(400, "bare CR or LF in the header block")
        if line[:1] in (b" ", b"\t"):
            raise _fail(400, "obsolete line folding is not accepted")
        name, colon, value = line.partition(b":")
        if not colon:
            raise _fail(400, "header line without a colon")
        if not _TOKEN.fullmatch(name):
            raise _fail(400, "invalid header field name")  # includes whitespace before the colon
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise _fail(400, "control character in a header value")
        fields.append((name.decode("ascii"), value.decode("latin-1")))
    headers = Headers(fields)

    hosts = headers.get_all("Host")
    if len(hosts) > 1:
        raise _fail(400, "more than one Host header")
    if not hosts and version == (1, 1):
        raise _fail(400, "HTTP/1.1 request without a Host header")
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise _fail(400, "malformed Host header")

    te = headers.get_all("Transfer-Encoding")
    lengths = headers.get_all("Content-Length")
    if te:
        # RFC 9112 §6.1/§6.3: TE with CL is a smuggling attempt; TE in 1.0 is faulty. Either way close.
        if lengths:
            raise _fail(400, "both Transfer-Encoding and Content-Length")
        if version == (1, 0):
            raise _fail(400, "Transfer-Encoding in an HTTP/1.0 request")
        raise _fail(501, f"Transfer-Encoding {', '.join(te)[:40]!r} is not implemented; send Content-Length")
    if len(lengths) > 1:
        raise _fail(400, "more than one Content-Length header")
    length = 0
    if lengths:
        raw = lengths[0]
        if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_CONTENT_LENGTH_DIGITS:
            raise _fail(400, "malformed Content-Length")
        length = int(raw)

    expect = headers.get("Expect")
    expect_continue = False
    if expect is not None:
        if expect.lower() != "100-continue":
            raise _fail(417, "only Expect: 100-continue is understood")
        expect_continue = version == (1, 1)

    target = _origin_target(method, raw_target.decode("ascii"), hosts[0] if hosts else None)
    conn = {t.strip().lower() for v in headers.get_all("Connection") for t in v.split(",")}
    keep_alive = "close" not in conn if version == (1, 1) else "keep-alive" in conn
    return RequestHead(method, target, version, headers, length, keep_alive, expect_continue)


def _origin_target(method: str, target: str, host: str | None) -> str:
    if target.startswith("/"):
        return target
    if target == "*":
        if method != "OPTIONS":
            raise _fail(400, "asterisk-form is only for OPTIONS")
        return target
    low = target.lower()
    for scheme in ("http://", "https://"):
        if low.startswith(scheme):
            rest = target[len(scheme):]
            slash = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
            authority, path = rest[:slash], rest[slash:]
            if not authority or "@" in authority:
                raise _fail(400, "absolute-form target without a usable authority")
            # RFC 9112 §3.2.2: the target's authority replaces Host; we refuse any disagreement.
            if host is None or authority.lower() != host.lower():
                raise _fail(400, "absolute-form target does not match the Host header")
            if not path:
                return "/"
            return path if path.startswith("/") else "/" + path
    raise _fail(400, "request target must be a path (origin-form) or an absolute http(s) URL")
