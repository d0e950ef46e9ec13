"""The gateway's HTTP API as an OpenAPI 3.0 document (served at /api/openapi.json).

Written by hand, next to the handlers in app.py, and checked against them by the fuzz test
(tests/integration/test_gateway_fuzz.py): every documented operation answers malformed input
with a 4xx, never a 5xx.
"""

from __future__ import annotations

from typing import Any

from veil.gateway import wallet_openapi
from veil.gateway.uploads import MAX_BATCH_BYTES

_ERROR = {"$ref": "#/components/schemas/Error"}
_VERIFY = {
    "name": "verify", "in": "path", "required": True,
    "description": "The verify part of a share link: base32(storage index[16] || manifest hash[32] || check[4]).",
    "schema": {"type": "string", "pattern": "^[a-z2-7]{84}$", "maxLength": 200},
}
_SLOT = {
    "name": "slot", "in": "path", "required": True,
    "description": "A folder's slot id in hex (the path of a folder link, base32-decoded, without its check).",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$", "maxLength": 64},
}
_UID = {"name": "uid", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": _ERROR}}}


def spec() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Veil gateway API",
            "version": "1",
            "description": (
                "Ciphertext in, ciphertext out. The browser encrypts and seals segments and metadata "
                "(docs/specs/gateway.md); the gateway erasure-codes and spreads them over storage nodes, "
                "and on the way back fetches, verifies and decodes sealed segments. It never receives a key."
            ),
        },
        "paths": {
            "/api/tenant": {"get": {
                "operationId": "getTenant", "summary": "The tenant this host serves: name, limits, allowance.",
                "responses": {"200": {"description": "tenant", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Tenant"}}}}, "404": _err("unknown host")},
            }},
            "/api/uploads": {"post": {
                "operationId": "beginUpload", "summary": "Start an upload of one file.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/BeginUpload"}}}},
                "responses": {
                    "201": {"description": "upload session", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/UploadSession"}}}},
                    "400": _err("malformed request"), "413": _err("file larger than the tenant allows"),
                    "415": _err("not JSON"), "503": _err("not enough storage nodes, or too many uploads"),
                },
            }},
            "/api/uploads/{uid}/segments": {"put": {
                "operationId": "putSegments",
                "summary": "Append sealed segments start, start+1, … (whole segments only, in order).",
                "parameters": [_UID, {"name": "start", "in": "query", "required": True,
                                      "schema": {"type": "integer", "minimum": 0}}],
                "requestBody": {"required": True, "content": {"application/octet-stream": binary},
                                "description": f"Concatenated sealed segments, at most {MAX_BATCH_BYTES} bytes."},
                "responses": {
                    "200": {"description": "accepted", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"next": {"type": "integer"}}, "required": ["next"]}}}},
                    "400": _err("not whole segments"), "404": _err("no such upload"),
                    "409": _err("out of order, or the upload is not open"), "413": _err("batch too large"),
                    "503": _err("storage nodes failed"),
                },
            }},
            "/api/uploads/{uid}/finish": {"post": {
                "operationId": "finishUpload",
                "summary": "Commit the shares and publish the manifest; returns the manifest bytes.",
                "parameters": [_UID],
                "responses": {
                    "200": {"description": "manifest (b\"VLMF\" 0x01 canonical CBOR)",
                            "content": {"application/vnd.veil.manifest": binary}},
                    "400": _err("finish takes no body"), "404": _err("no such upload"),
                    "409": _err("segments missing"), "503": _err("too few nodes took their shares"),
                },
            }},
            "/api/uploads/{uid}": {"get": {
                "operationId": "uploadStatus",
                "summary": "Where an upload stands: resume by sending segments from `next` (repeats are skipped).",
                "parameters": [_UID],
                "responses": {"200": {"description": "session state", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["id", "state", "next", "nseg", "expires_in"], "properties": {
                        "id": {"type": "string"},
                        "state": {"type": "string", "enum": ["open", "complete", "finishing", "done"]},
                        "next": {"type": "integer"}, "nseg": {"type": "integer"},
                        "expires_in": {"type": "integer", "description": "seconds before the session is dropped"},
                    }}}}}, "404": _err("no such upload (finished long ago, aborted, or expired)")},
            }, "delete": {
                "operationId": "abortUpload", "summary": "Abandon an upload; the nodes drop its partial shares.",
                "parameters": [_UID],
                "responses": {"204": {"description": "aborted"}, "404": _err("no such upload")},
            }},
            "/api/files/{verify}/manifest": {"get": {
                "operationId": "getManifest",
                "summary": "The manifest, checked against the hash in the verify part (check it again yourself).",
                "parameters": [_VERIFY],
                "responses": {"200": {"description": "manifest", "content": {"application/vnd.veil.manifest": binary}},
                              "400": _err("garbled link"), "404": _err("no node has this file"),
                              "503": _err("nodes unreachable")},
            }},
            "/api/files/{verify}/segments": {"get": {
                "operationId": "getSegments",
                "summary": "Sealed segments [start, start+count), erasure-decoded and checked against the manifest.",
                "parameters": [
                    _VERIFY,
                    {"name": "start", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    {"name": "count", "in": "query", "schema": {"type": "integer", "minimum": 1},
                     "description": "default: to the end of the file"},
                ],
                "responses": {"200": {"description": "sealed segments, concatenated",
                                      "headers": {"X-Veil-Segments": {"schema": {"type": "string"},
                                                                      "description": "first-last segment index"}},
                                      "content": {"application/octet-stream": binary}},
                              "400": _err("garbled link or range outside the file"),
                              "402": _err("the nodes charge for downloads and this gateway cannot pay "
                                          "(no wallet, or its spending limit is reached)"),
                              "404": _err("no node has this file"), "503": _err("too few shares reachable")},
            }},
            "/api/files/{verify}/delete": {"post": {
                "operationId": "deleteFile",
                "summary": "Delete the file's shares from the nodes, with its deletion key (only its uploader has it).",
                "parameters": [_VERIFY],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["key"], "additionalProperties": False,
                    "properties": {"key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}}}},
                "responses": {"200": {"description": "shares deleted", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"deleted": {"type": "integer"}, "nodes": {"type": "integer"},
                                                     "unreachable": {"type": "integer"}}}}}},
                              "400": _err("garbled link or key"), "403": _err("the key does not open this file's "
                                                                              "deletion commitment"),
                              "404": _err("no node has this file"), "503": _err("nodes unreachable")},
            }},
            "/api/files/{verify}/cost": {"get": {
                "operationId": "getCost",
                "summary": "What downloading the file costs, from the holders' advertised prices.",
                "parameters": [_VERIFY],
                "responses": {"200": {"description": "cost estimate", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Cost"}}}},
                              "400": _err("garbled link"), "404": _err("no node has this file"),
                              "503": _err("nodes unreachable")},
            }},
            "/api/mutable/{slot}": {
                "get": {
                    "operationId": "getFolderVersion",
                    "summary": "The folder's current signed version, resolved over its nodes (verify it yourself).",
                    "parameters": [_SLOT],
                    "responses": {"200": {"description": "slot record (b\"VLMS\" 0x01 ..., docs/specs/folders.md)",
                                          "headers": {"X-Veil-Anchor": {"schema": {"type": "string"}, "description":
                                                      "checkstring of the highest settled version seen, or 0"},
                                                      "X-Veil-Seq": {"schema": {"type": "integer"}},
                                                      "X-Veil-Holders": {"schema": {"type": "integer"}, "description":
                                                      "how many of the folder's nodes hold this version"}},
                                          "content": {"application/octet-stream": binary}},
                                  "400": _err("garbled folder id"), "404": _err("no node holds this folder"),
                                  "503": _err("too few of the folder's nodes answered")},
                },
                "put": {
                    "operationId": "putFolderVersion",
                    "summary": "Store a new version signed in the page (compare-and-swap on its base).",
                    "parameters": [_SLOT],
                    "requestBody": {"required": True, "content": {"application/octet-stream": binary},
                                    "description": "a signed slot record of this folder"},
                    "responses": {"200": {"description": "stored on enough nodes", "content": {"application/json": {
                                      "schema": {"type": "object", "required": ["seq", "hash", "accepted", "n"],
                                                 "properties": {"seq": {"type": "integer"}, "hash": {"type": "string"},
                                                                "accepted": {"type": "integer"},
                                                                "n": {"type": "integer"}}}}}},
                                  "400": _err("garbled folder id, or not a validly signed version of it"),
                                  "409": _err("another writer changed the folder: read it again and retry"),
                                  "413": _err("record too large"),
                                  "503": _err("too few of the folder's nodes answered")},
                },
            },
            "/api/openapi.json": {"get": {
                "operationId": "getOpenApi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {
                    "type": "object"}}}}},
            }},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "message"],
                      "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                     "request_id": {"type": "string", "description":
                                                    "names this request in the gateway's log"}}},
            "BeginUpload": {
                "type": "object", "additionalProperties": False, "required": ["si", "size", "segsize", "meta"],
                "properties": {
                    "si": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                           "description": "storage index: first 16 bytes of H('veil/storage-index/v1', file key)"},
                    "size": {"type": "integer", "minimum": 0, "maximum": 2**53},
                    "segsize": {"type": "integer", "minimum": 4096, "maximum": 16 << 20},
                    "k": {"type": "integer", "minimum": 1, "maximum": 255},
                    "n": {"type": "integer", "minimum": 1, "maximum": 255},
                    "meta": {"type": "string", "format": "byte", "description": "sealed metadata, base64"},
                    "delete": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                               "description": "H('veil/delete-commitment/v1', deletion key): the manifest's `delete`"},
                },
            },
            "UploadSession": {"type": "object", "required": ["id", "nseg", "k", "n", "max_batch_bytes"], "properties": {
                "id": {"type": "string"}, "nseg": {"type": "integer"}, "k": {"type": "integer"},
                "n": {"type": "integer"}, "max_batch_bytes": {"type": "integer"}}},
            "Cost": {
                "type": "object", "additionalProperties": False,
                "required": ["size", "fetch_bytes", "price_per_gb", "free", "estimate", "currency", "allowance_left",
                             "gateway_pays"],
                "properties": {
                    "size": {"type": "integer", "minimum": 0, "description": "file size in bytes"},
                    "fetch_bytes": {"type": "integer", "minimum": 0,
                                    "description": "block bytes a download asks of the nodes (k+1 shares)"},
                    "price_per_gb": {"type": "integer", "minimum": 0, "description":
                                     "highest price among the holders, smallest units per 10^9 bytes served"},
                    "free": {"type": "boolean", "description": "no holder charges"},
                    "estimate": {"type": "integer", "minimum": 0,
                                 "description": "fetch_bytes at price_per_gb, smallest units (1 VEIL = 10^9)"},
                    "currency": {"type": "string", "enum": ["VEIL"]},
                    "allowance_left": {"type": "integer", "minimum": 0, "nullable": True, "description":
                                       "free bytes the gateway's wallet has left this epoch (paid first); "
                                       "null without a wallet"},
                    "gateway_pays": {"type": "boolean", "description":
                                     "the gateway has a wallet and pays charging nodes for its visitors"},
                },
            },
            "Tenant": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "max_file_size": {"type": "integer"},
                "allowed_types": {"type": "array", "items": {"type": "string"}},
                "embed_origins": {"type": "array", "items": {"type": "string"}},
                "allowance": {"type": "object", "nullable": True,
                              "description": "null unless the gateway has a wallet that pays for visitors"},
                "pays": {"type": "boolean"}, "show_embed": {"type": "boolean"}, "defaults": {"type": "object"},
                "max_batch_bytes": {"type": "integer"}}},
        }},
    }
    doc["paths"].update(wallet_openapi.PATHS)
    doc["components"]["schemas"].update(wallet_openapi.SCHEMAS)
    return doc
