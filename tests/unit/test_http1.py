"""The strict HTTP/1.1 head parser, sans-I/O: every rejection of RFC 9112 it promises, and the heads it accepts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.net.http1 import MAX_FIELDS, MAX_HEAD, MAX_LINE, HeadError, RequestHead, parse_head
from veil.net.wire import Limits, render_head


def ok(raw: bytes) -> tuple[RequestHead, int]:
    r = parse_head(raw)
    assert r is not None
    return r


def status_of(raw: bytes) -> int:
    with pytest.raises(HeadError) as e:
        parse_head(raw)
    return e.value.status


def test_simple_get_and_leftover() -> None:
    raw = b"GET /v1/node?a=1 HTTP/1.1\r\nHost: x:1\r\nX-A:  b c \r\n\r\nBODY"
    head, used = ok(raw)
    assert (head.method, head.target, head.version) == ("GET", "/v1/node?a=1", (1, 1))
    assert head.headers.get("host") == "x:1" and head.headers["X-A"] == "b c"
    assert head.content_length == 0 and head.keep_alive and not head.expect_continue
    assert raw[used:] == b"BODY"


def test_incomplete_heads_need_more() -> None:
    full = b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
    for i in range(len(full)):
        assert parse_head(full[:i]) is None, i
    head, used = ok(full)
    assert head.content_length == 5 and used == len(full)


def test_keep_alive_rules_and_leading_crlf() -> None:
    assert not ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")[0].keep_alive
    assert not ok(b"GET / HTTP/1.0\r\n\r\n")[0].keep_alive
    assert ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[0].keep_alive
    assert ok(b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")[0].target == "/"


@pytest.mark.parametrize("raw", [
    # TE.CL smuggling (issue 18): Content-Length covers the chunk-size line only
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # 1.1 without Host
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xd9\xa3\r\n\r\n",  # Arabic-Indic digit
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost: a\r\n\tX-A: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",  # whitespace before the colon
    b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",  # bare LF
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\xc3\xa4 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
    b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute-form must agree with Host
    b"GET http://a@b/ HTTP/1.1\r\nHost: a@b\r\n\r\n",
    b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",  # authority-form is not served
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
])
def test_rejected_with_400(raw: bytes) -> None:
    assert status_of(raw) == 400


def test_transfer_encoding_alone_is_not_implemented() -> None:
    assert status_of(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == 501
    assert status_of(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501


def test_versions_and_the_http2_preface() -> None:
    assert status_of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505
    assert status_of(b"PRI * HTTP/2.0\r\n") == 505  # before the head is even complete
    assert status_of(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505
    assert status_of(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n") == 505
    assert status_of(b"GET / HTTP/0.9\r\n\r\n") == 505


def test_limits_414_and_431_before_the_head_is_complete() -> None:
    assert status_of(b"GET /" + b"a" * MAX_LINE) == 414  # no CRLF yet: refused without waiting
    assert status_of(b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\nHost: a\r\n\r\n") == 414
    big = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Pad: " + b"p" * MAX_HEAD
    assert status_of(big) == 431  # unterminated and over the limit
    assert status_of(big + b"\r\n\r\n") == 431
    many = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_FIELDS)) + b"\r\n"
    assert status_of(many) == 431
    assert status_of(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n") == 417


def test_garbage_fails_early_without_waiting_for_the_end_of_the_head() -> None:
    assert status_of(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n") == 400  # a TLS hello on a plain port
    assert parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n") is None


def test_absolute_form_is_reduced_to_origin_form_when_it_agrees() -> None:
    head, _ = ok(b"GET http://Gw.Example:8080/f/x?y=1 HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n")
    assert head.target == "/f/x?y=1"
    assert ok(b"GET https://a HTTP/1.1\r\nHost: a\r\n\r\n")[0].target == "/"
    assert ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")[0].target == "*"


def test_expect_continue_and_header_lookup() -> None:
    head, _ = ok(b"PUT /x HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\nContent-Length: 3\r\nA: 1\r\nA: 2\r\n\r\n")
    assert head.expect_continue and head.headers.get_all("a") == ["1", "2"] and head.headers["A"] == "1"
    assert head.headers.get("missing", "d") == "d" and "content-length" in head.headers


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        parse_head(data)
    except HeadError as e:
        assert e.status in (400, 414, 417, 431, 501, 505)


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=50))
def test_response_headers_cannot_be_split(value: str) -> None:
    head = render_head(200, "text/plain", 0, {"X-V": value}, {"X-D": value}, close=False)
    assert head.endswith(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    # status, Server, Date, Content-Type, Content-Length, X-D, and X-V unless empty: nothing injected
    assert len(lines) == 6 + (1 if value else 0)
    assert all(b"\n" not in ln and b"\r" not in ln and b": " in ln for ln in lines[1:])


def test_defaults_yield_to_the_handler_and_empty_drops_them() -> None:
    head = render_head(404, "text/html", 3, {"x-frame-options": "", "CSP": "mine"},
                       {"X-Frame-Options": "DENY", "CSP": "default", "Nosniff": "1"}, close=True)
    text = head.decode()
    assert "X-Frame-Options" not in text and "CSP: mine" in text and "default" not in text
    assert "Nosniff: 1" in text and "Connection: close" in text and text.startswith("HTTP/1.1 404 Not Found\r\n")
    assert Limits().queue > 0
