"""The gateway API's JSON plumbing: answers, errors, and checked fields of request bodies."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from veil.errors import CapError, UsageError
from veil.format.caps import VerifyCap, parse_verify_cap
from veil.net.server import HTTPError, Request, Response

MAX_JSON = 64 * 1024


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(value).encode(), content_type="application/json")


def json_error(status: int, code: str, message: str, rid: str | None = None) -> Response:
    body: dict[str, str] = {"error": code, "message": message}
    if rid is not None:
        body["request_id"] = rid
    return json_response(body, status)


def read_json(req: Request) -> dict[str, Any]:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "unsupported_media_type", "send application/json")
    raw = req.read_body(MAX_JSON)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise HTTPError(400, "bad_request", "body is not valid JSON") from e
    if not isinstance(value, dict):
        raise HTTPError(400, "bad_request", "body must be a JSON object")
    return value


def int_field(m: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise HTTPError(400, "bad_request", f"field {key!r} must be an integer in [{lo}, {hi}]")
    return v


def hex_field(m: dict[str, Any], key: str, size: int) -> bytes:
    v = m.get(key)
    if not isinstance(v, str) or len(v) != 2 * size:
        raise HTTPError(400, "bad_request", f"field {key!r} must be {size} bytes in hex")
    try:
        return bytes.fromhex(v)
    except ValueError as e:
        raise HTTPError(400, "bad_request", f"field {key!r} must be {size} bytes in hex") from e


def b64_field(m: dict[str, Any], key: str) -> bytes:
    v = m.get(key)
    if not isinstance(v, str) or len(v) > 32 * 1024:
        raise HTTPError(400, "bad_request", f"field {key!r} must be base64")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HTTPError(400, "bad_request", f"field {key!r} must be base64") from e


def verify_param(text: str) -> VerifyCap:
    if len(text) > 200:
        raise HTTPError(400, "bad_request", "file id is too long")
    try:
        return parse_verify_cap("veil:v1:" + text)
    except (CapError, UsageError) as e:
        raise HTTPError(400, "bad_link", str(e)) from e
