"""The web wallet's part of the gateway's OpenAPI document (merged into openapi.spec())."""

from __future__ import annotations

from typing import Any

from veil.ledger.tx import MAX_TX_SIZE

_ERROR = {"$ref": "#/components/schemas/Error"}
_ADDRESS = {
    "name": "address", "in": "path", "required": True,
    "description": "An account address as people write it: vb1 + base32(address[32] || checksum[4]).",
    "schema": {"type": "string", "pattern": "^vb1[a-z2-7]{58}$", "maxLength": 100},
}
_UINT = {"type": "string", "pattern": "^[0-9]{1,20}$",
         "description": "a non-negative integer as decimal text (JSON numbers lose precision past 2^53)"}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": _ERROR}}}


def _ok(desc: str, schema: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


NO_LEDGER = "the gateway's network has no ledger, or no validator answered"

_URI = {"name": "uri", "in": "query", "required": True, "description": "a veil:pay payment URI (docs/specs/invoices.md)",
        "schema": {"type": "string", "maxLength": 2048}}

PATHS: dict[str, Any] = {
    "/api/wallet/invoice": {"get": {
        "operationId": "getInvoiceStatus", "summary": "What the ledger says about the invoice a payment URI names.",
        "parameters": [_URI],
        "responses": {"200": _ok("settlement", "InvoiceStatus"), "400": _err("not a valid payment URI (garbled, altered)"),
                      "414": _err("the URI, percent-encoded, makes the request line too long"), "503": _err(NO_LEDGER)},
    }},
    "/api/wallet/qr": {"get": {
        "operationId": "getInvoiceQr", "summary": "The QR code of a valid payment URI, as SVG.",
        "parameters": [_URI],
        "responses": {"200": {"description": "SVG", "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                      "400": _err("not a valid payment URI (garbled, altered)"),
                      "414": _err("the URI, percent-encoded, makes the request line too long")},
    }},
    "/api/wallet/info": {"get": {
        "operationId": "getWalletInfo", "summary": "The chain id and minimum fee a transaction signed in the page needs.",
        "responses": {"200": _ok("chain parameters", "WalletInfo"), "503": _err(NO_LEDGER)},
    }},
    "/api/wallet/account/{address}": {"get": {
        "operationId": "getWalletAccount", "summary": "An account's balance, next nonce and free allowance (public ledger data).",
        "parameters": [_ADDRESS],
        "responses": {"200": _ok("account", "WalletAccount"), "400": _err("not a valid address (prefix, length, checksum)"),
                      "503": _err(NO_LEDGER)},
    }},
    "/api/wallet/history/{address}": {"get": {
        "operationId": "getWalletHistory", "summary": "An account's latest transactions, newest first.",
        "parameters": [_ADDRESS, {"name": "limit", "in": "query",
                                  "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}],
        "responses": {"200": _ok("history", "WalletHistory"), "400": _err("not a valid address, or limit out of range"),
                      "502": _err("a validator sent a malformed answer"), "503": _err(NO_LEDGER)},
    }},
    "/api/wallet/tx": {"post": {
        "operationId": "submitWalletTx",
        "summary": "Relay a transfer signed in the page to the validators; answers once it is in a block.",
        "requestBody": {"required": True, "description": f"the signed transaction's wire bytes (canonical CBOR, at most "
                                                         f"{MAX_TX_SIZE}); application/cbor is accepted too",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {"200": _ok("in a block", "WalletSubmitted"),
                      "400": _err("malformed, not a transfer, a bad signature, or refused by the ledger "
                                  "(error: insufficient_funds, bad_nonce, wrong_chain, ...)"),
                      "413": _err("too large"), "415": _err("not application/octet-stream (or application/cbor)"), "503": _err(NO_LEDGER)},
    }},
}

SCHEMAS: dict[str, Any] = {
    "InvoiceStatus": {"type": "object", "required": ["invoice", "status", "amount", "received", "credit", "expires"],
                      "properties": {"invoice": {"type": "string"},
                                     "status": {"type": "string", "enum": ["open", "paid", "underpaid", "overpaid", "expired"]},
                                     "amount": _UINT, "received": _UINT, "late": _UINT, "credit": _UINT,
                                     "expires": {"type": "integer"}, "expired": {"type": "boolean"},
                                     "payments": {"type": "array", "items": {"type": "object"}}}},
    "WalletInfo": {"type": "object", "required": ["chain", "network", "min_fee", "decimals", "symbol", "max_memo"],
                   "properties": {"chain": {"type": "string"}, "network": {"type": "string"}, "min_fee": _UINT,
                                  "decimals": {"type": "integer"}, "symbol": {"type": "string"},
                                  "max_memo": {"type": "integer"}, "epoch_seconds": {"type": "integer"}}},
    "WalletAccount": {"type": "object",
                      "required": ["address", "balance", "nonce", "allowance", "allowance_left", "epoch_ends"],
                      "properties": {"address": {"type": "string"}, "exists": {"type": "boolean"}, "balance": _UINT,
                                     "nonce": _UINT, "stake": _UINT, "allowance": _UINT, "allowance_left": _UINT,
                                     "epoch_ends": {"type": "integer", "description": "unix seconds: the allowance renews"},
                                     "channels": {"type": "integer"}, "stale": {"type": "boolean"}}},
    "WalletHistory": {"type": "object", "required": ["address", "txs"], "properties": {
        "address": {"type": "string"},
        "txs": {"type": "array", "items": {"type": "object", "required": ["id", "kind", "from", "amount", "direction"],
                                           "properties": {"id": {"type": "string"},
                                                          "height": {"type": "integer", "nullable": True},
                                                          "kind": {"type": "string"}, "from": {"type": "string"},
                                                          "to": {"type": "string", "nullable": True}, "amount": _UINT,
                                                          "fee": _UINT, "memo": {"type": "string", "nullable": True},
                                                          "invoice": {"type": "string", "nullable": True},
                                                          "direction": {"type": "string", "enum": ["in", "out", "self"]}}}}}},
    "WalletSubmitted": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "height": {"type": "integer", "nullable": True}}},
}
