"""The storage role: keeps shares and manifests, serves block ranges with Merkle proofs.

Config keys (from `veil node run`): ``capacity`` (bytes; None = the disk's free space).

With the ``dht`` role on the same node, every committed share is announced with a signed
provider record (``provide``: republished until withdrawn) and, once the node has joined,
every storage index already on disk is announced again. The store is offered to other roles
as ``ctx.services.store``. ``POST /v1/node/drain`` (only with the node's control token,
``DATA/control.token``, in ``X-Veil-Control``: proof of access to the node's data dir) hands
every share to other nodes (node/drain.py); meanwhile new uploads are refused.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from veil.durable import write_atomic
from veil.errors import IntegrityError, VeilError
from veil.format import cbor
from veil.format.fields import get_bytes, require_map
from veil.net.dht_driver import DhtDriver
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.node.drain import Drainer
from veil.node.netview import node_network
from veil.protocol.placement import dht_key
from veil.protocol.storage import MAX_CONTROL, MAX_UPLOAD_BODY, parse_si, parse_upload_request
from veil.storage.store import ConflictError, ShareStore

CHUNK = 1 << 20
CONTROL_HEADER = "X-Veil-Control"
_local = threading.local()
log = logging.getLogger("veil.storage")


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


def _shnum(text: str) -> int:
    if not text.isdigit() or int(text) > 254:
        raise HTTPError(400, "bad_request", "share number must be 0..254")
    return int(text)


def _control_token(path: Path) -> bytes:
    """The node's control token (hex), created with mode 0600 on first start."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_hex(32).encode()
    write_atomic(path, token, 0o600, exclusive=True)
    return token


class StorageRole:
    name = "storage"

    def __init__(self) -> None:
        self.store: ShareStore | None = None
        self.ctx: NodeContext | None = None
        self.drainer: Drainer | None = None
        self._token = b""
        self._stop = threading.Event()

    def attach(self, ctx: NodeContext, router: Router) -> None:
        cap = ctx.config.capacity
        self.ctx = ctx
        self.store = ShareStore(ctx.data_dir / "storage", capacity=cap if cap else None)
        ctx.services.store = self.store
        ctx.services.draining = lambda: self.draining
        self._token = _control_token(ctx.data_dir / "control.token")
        router.add("POST", "/v1/node/drain", self.drain)
        router.add("GET", "/v1/node/drain", self.drain_status)
        router.add("POST", "/v1/uploads", self.begin)
        router.add("PUT", "/v1/uploads/{uid}", self.write)
        router.add("POST", "/v1/uploads/{uid}/commit", self.commit)
        router.add("DELETE", "/v1/uploads/{uid}", self.abort)
        router.add("PUT", "/v1/manifests/{si}", self.put_manifest)
        router.add("GET", "/v1/shares/{si}", self.list_shares)
        router.add("GET", "/v1/shares/{si}/{shnum}", self.read)

    def start(self) -> None:
        threading.Thread(target=self._announce_all, name="provide-all", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        assert self.store is not None
        st: dict[str, Any] = dict(self.store.usage())
        if self.drainer is not None:
            st["drain"] = self.drainer.status.to_value()
        return st

    # -- announcing and draining --------------------------------------------------------

    def _dht(self) -> DhtDriver | None:
        return self.ctx.services.dht if self.ctx is not None else None

    def _provide(self, si: bytes) -> None:
        dht = self._dht()
        if dht is None:
            return
        shnums, _ = self._store.list_shares(si)
        if shnums:
            dht.provide(dht_key(si), tuple(shnums))

    def _announce_all(self) -> None:
        """Once the DHT has joined, announce every storage index on disk (after a restart, or
        shares committed before the join finished)."""
        while not self._stop.is_set():
            dht = self._dht()
            if dht is None or dht.joined.wait(0.5):
                break
        if self._dht() is None:
            return
        for si in self._store.storage_indexes():
            if self._stop.wait(0.01):
                return
            self._provide(si)

    def _check_token(self, req: Request) -> None:
        got = req.headers.get(CONTROL_HEADER, "")
        if not self._token or not hmac.compare_digest(got.encode(), self._token):
            raise HTTPError(403, "forbidden", "drain needs the node's control token (DATA/control.token)")

    @property
    def draining(self) -> bool:
        return self.drainer is not None and self.drainer.status.state in ("running", "done")

    def drain(self, req: Request) -> Response:
        self._check_token(req)
        assert self.ctx is not None
        if self.drainer is None or self.drainer.status.state == "failed":
            try:
                net = node_network(self.ctx)
            except VeilError as e:
                raise HTTPError(409, "no_network", str(e)) from e
            self.drainer = Drainer(self._store, net, self.ctx.node_id, self._dht())
        self.drainer.start()
        return cbor_response(self.drainer.status.to_value())

    def drain_status(self, req: Request) -> Response:
        self._check_token(req)
        return cbor_response(self.drainer.status.to_value() if self.drainer is not None else {"state": "idle"})

    @property
    def _store(self) -> ShareStore:
        assert self.store is not None
        return self.store

    def begin(self, req: Request) -> Response:
        if self.draining:
            raise HTTPError(503, "draining", "this node is leaving the network and takes no new shares")
        up = parse_upload_request(cbor.decode(req.read_body(MAX_CONTROL), MAX_CONTROL))
        return cbor_response({"id": self._store.begin_upload(up)})

    def write(self, req: Request) -> Response:
        n = req.content_length
        if n > MAX_UPLOAD_BODY:
            raise HTTPError(413, "too_large", f"upload body of {n} bytes exceeds {MAX_UPLOAD_BODY}")
        buf = _upload_buffer(n)
        req.readinto_exact(buf)
        nxt = self._store.write_blocks(req.params["uid"], req.int_param("start"), buf)
        return cbor_response({"next": nxt})

    def commit(self, req: Request) -> Response:
        w = "commit request"
        m = require_map(cbor.decode(req.read_body(MAX_CONTROL), MAX_CONTROL), w, {"root", "segroot"})
        try:
            si = self._store.upload_request(req.params["uid"]).si
            root = self._store.commit_upload(req.params["uid"], get_bytes(m, "root", w, 32), get_bytes(m, "segroot", w, 32))
        except ConflictError as e:
            raise HTTPError(409, "conflict", str(e)) from e
        try:
            self._provide(si)
        except VeilError as e:  # the share is stored; the next announce round retries
            log.info("announcing %s failed: %s", si.hex()[:16], e)
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
                si, shnum, req.int_param("start", 0), req.int_param("count", 1)
            )
        except IntegrityError as e:
            raise HTTPError(500, "corrupt_share", f"stored share is damaged: {e}") from e
        # A charging node (payments role, node/payments_role.py) is paid before a byte is sent.
        gate = self.ctx.services.payments if self.ctx is not None else None
        refusal: Response | None = gate.charge(req, si, length) if gate is not None else None
        if refusal is not None:
            return refusal
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
