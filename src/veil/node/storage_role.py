"""The storage role: keeps shares and manifests, serves block ranges with Merkle proofs.

Config keys (from `veil node run`): ``capacity`` (bytes; None = the disk's free space).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from veil.errors import IntegrityError
from veil.format import cbor
from veil.format.fields import get_bytes, require_map
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.protocol.storage import MAX_CONTROL, MAX_UPLOAD_BODY, parse_si, parse_upload_request
from veil.storage.store import ConflictError, ShareStore

CHUNK = 1 << 20
_local = threading.local()


def _chunk_buffer() -> memoryview:
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(CHUNK))
    return buf


def _upload_buffer(n: int) -> memoryview:
    buf: bytearray | None = getattr(_local, "ubuf", None)
    if buf is None or len(buf) < n:
        buf = _local.ubuf = bytearray(max(n, 8 << 20))
    return memoryview(buf)[:n]


def _int_param(req: Request, name: str, default: int | None = None) -> int:
    raw = req.query.get(name)
    if raw is None:
        if default is None:
            raise HTTPError(400, "bad_request", f"missing parameter {name}")
        return default
    if not raw.isdigit() or len(raw) > 15:
        raise HTTPError(400, "bad_request", f"parameter {name} must be a non-negative integer")
    return int(raw)


def _shnum(text: str) -> int:
    if not text.isdigit() or int(text) > 254:
        raise HTTPError(400, "bad_request", "share number must be 0..254")
    return int(text)


class StorageRole:
    name = "storage"

    def __init__(self) -> None:
        self.store: ShareStore | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        cap = ctx.config.get("capacity")
        self.store = ShareStore(ctx.data_dir / "storage", capacity=int(cap) if cap else None)
        router.add("POST", "/v1/uploads", self.begin)
        router.add("PUT", "/v1/uploads/{uid}", self.write)
        router.add("POST", "/v1/uploads/{uid}/commit", self.commit)
        router.add("DELETE", "/v1/uploads/{uid}", self.abort)
        router.add("PUT", "/v1/manifests/{si}", self.put_manifest)
        router.add("GET", "/v1/shares/{si}", self.list_shares)
        router.add("GET", "/v1/shares/{si}/{shnum}", self.read)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def status(self) -> dict[str, Any]:
        assert self.store is not None
        return self.store.usage()

    @property
    def _store(self) -> ShareStore:
        assert self.store is not None
        return self.store

    def begin(self, req: Request) -> Response:
        up = parse_upload_request(cbor.decode(req.read_body(MAX_CONTROL), MAX_CONTROL))
        return cbor_response({"id": self._store.begin_upload(up)})

    def write(self, req: Request) -> Response:
        n = req.content_length
        if n > MAX_UPLOAD_BODY:
            raise HTTPError(413, "too_large", f"upload body of {n} bytes exceeds {MAX_UPLOAD_BODY}")
        buf = _upload_buffer(n)
        req.readinto_exact(buf)
        nxt = self._store.write_blocks(req.params["uid"], _int_param(req, "start"), buf)
        return cbor_response({"next": nxt})

    def commit(self, req: Request) -> Response:
        w = "commit request"
        m = require_map(cbor.decode(req.read_body(MAX_CONTROL), MAX_CONTROL), w, {"root", "segroot"})
        try:
            root = self._store.commit_upload(req.params["uid"], get_bytes(m, "root", w, 32), get_bytes(m, "segroot", w, 32))
        except ConflictError as e:
            raise HTTPError(409, "conflict", str(e)) from e
        return cbor_response({"root": root})

    def abort(self, req: Request) -> Response:
        self._store.abort_upload(req.params["uid"])
        return cbor_response({})

    def put_manifest(self, req: Request) -> Response:
        si = parse_si(req.params["si"])
        try:
            self._store.put_manifest(si, req.read_body(MAX_CONTROL))
        except ConflictError as e:
            raise HTTPError(409, "conflict", str(e)) from e
        return cbor_response({})

    def list_shares(self, req: Request) -> Response:
        shnums, manifest = self._store.list_shares(parse_si(req.params["si"]))
        return cbor_response({"shares": shnums, "manifest": manifest})

    def read(self, req: Request) -> Response:
        si = parse_si(req.params["si"])
        shnum = _shnum(req.params["shnum"])
        try:
            head, offset, length, path = self._store.read_range(
                si, shnum, _int_param(req, "start", 0), _int_param(req, "count", 1)
            )
        except IntegrityError as e:
            raise HTTPError(500, "corrupt_share", f"stored share is damaged: {e}") from e
        fd = os.open(path, os.O_RDONLY)

        def body() -> Iterator[bytes | memoryview]:
            try:
                yield head
                buf = _chunk_buffer()
                pos, end = offset, offset + length
                while pos < end:
                    n = os.preadv(fd, [buf[: min(CHUNK, end - pos)]], pos)
                    if n <= 0:
                        return
                    yield buf[:n]
                    pos += n
            finally:
                os.close(fd)

        return Response(body=body(), content_length=len(head) + length)
