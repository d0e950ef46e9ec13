"""Visitor-facing errors (gateway/visitor.py): a sentence for the visitor, the cause for the log."""

from __future__ import annotations

import logging

import pytest

from veil.errors import (
    IntegrityError,
    NotFoundError,
    PaymentRequiredError,
    RemoteError,
    UnavailableError,
    UsageError,
)
from veil.gateway.pay import NO_WALLET
from veil.gateway.uploads import UploadBusyError, UploadStateError
from veil.gateway.visitor import BUSY, answer_for, log_failure
from veil.net.server import HTTPError

INTERNAL = "node 127.0.0.1:40123 (ab12cd) answered 500: Traceback KeyError"


@pytest.mark.parametrize("exc, status", [
    (UnavailableError(INTERNAL), 503), (RemoteError(INTERNAL), 502), (IntegrityError(INTERNAL), 502),
    (UsageError(INTERNAL), 400), (UploadStateError(INTERNAL), 409), (UploadBusyError(INTERNAL), 503),
    (PaymentRequiredError(INTERNAL), 402), (NotFoundError(INTERNAL), 404), (KeyError(INTERNAL), 500),
])
def test_no_internal_detail_reaches_the_visitor(exc: Exception, status: int) -> None:
    a = answer_for(exc)
    assert a.status == status
    for part in ("127.0.0.1", "40123", "ab12cd", "Traceback", "KeyError", "Error"):
        assert part not in a.message, (exc, a.message)
    assert (a.message[0].islower() and "try again" in a.message) or status in (400, 404, 409)


def test_busy_answers_say_when_to_come_back() -> None:
    a = answer_for(UnavailableError("x"))
    assert a.message == BUSY and a.headers == {"Retry-After": "60"}


def test_the_gateways_own_sentences_pass_through() -> None:
    assert answer_for(PaymentRequiredError(NO_WALLET)).message == NO_WALLET
    a = answer_for(HTTPError(413, "too_large", "Acme accepts files of at most 5 bytes"))
    assert (a.status, a.code, a.message) == (413, "too_large", "Acme accepts files of at most 5 bytes")


def test_the_log_gets_the_id_and_the_cause(caplog: pytest.LogCaptureFixture) -> None:
    rid = "0123456789abcdef"
    e = UnavailableError(INTERNAL)
    with caplog.at_level(logging.INFO, logger="veil.gateway"):
        log_failure(rid, "POST", "/api/uploads", e, answer_for(e))
    line = caplog.records[-1].getMessage()
    assert f"request {rid}:" in line and "UnavailableError" in line and "127.0.0.1:40123" in line
