"""The ``mutable`` role: keeps signed mutable slots (folders) and serves them (protocol/mutable.py).

Each record is verified by the store before it is kept (storage/mutable.py), so this node never
holds or serves a version its writer did not sign; a compare-and-swap that lost answers 409 with
the slot's current record, so the writer can merge without another round trip.

    DATA/mutable/slots.sqlite

Imports from: veil.errors, veil.net, veil.node, veil.protocol, veil.storage.
"""

from __future__ import annotations

from typing import Any

from veil.format.mutable import MAX_RECORD, MAX_SEQ, parse_checkstring
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.protocol.mutable import encode_conflict, encode_stored, encode_versions, parse_slot_id
from veil.storage.mutable import ANY, MutableStore, SlotConflict


class MutableRole:
    name = "mutable"

    def __init__(self) -> None:
        self.store: MutableStore | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        keep = ctx.config.folder_versions
        self.store = MutableStore(ctx.data_dir / "mutable" / "slots.sqlite", **({"keep": keep} if keep else {}))
        router.add("PUT", "/v1/mutable/{slot}", self.put)
        router.add("GET", "/v1/mutable/{slot}", self.get)
        router.add("GET", "/v1/mutable/{slot}/versions", self.versions)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        if self.store is not None:
            self.store.close()

    def status(self) -> dict[str, Any]:
        return self._store.usage()

    @property
    def _store(self) -> MutableStore:
        assert self.store is not None
        return self.store

    def put(self, req: Request) -> Response:
        slot = parse_slot_id(req.params["slot"])
        raw_expect = req.query.get("expect")
        expect = ANY if raw_expect is None else parse_checkstring(raw_expect)
        if req.content_length > MAX_RECORD:
            raise HTTPError(413, "too_large", f"a slot record is at most {MAX_RECORD} bytes")
        try:
            rec = self._store.put(slot, req.read_body(MAX_RECORD), expect)
        except SlotConflict as e:
            return Response(status=409, body=encode_conflict(str(e), e.current), content_type="application/cbor")
        return cbor_response(encode_stored(rec.seq, rec.hash))

    def get(self, req: Request) -> Response:
        slot = parse_slot_id(req.params["slot"])
        seq = req.int_param("seq") if "seq" in req.query else None
        if seq is not None and not 1 <= seq <= MAX_SEQ:
            raise HTTPError(400, "bad_request", "seq out of range")
        raw = self._store.get(slot, seq)
        if raw is None:
            what = "this slot" if seq is None else f"version {seq} of this slot"
            raise HTTPError(404, "not_found", f"this node does not hold {what}")
        return Response(body=raw)

    def versions(self, req: Request) -> Response:
        return cbor_response(encode_versions(self._store.versions(parse_slot_id(req.params["slot"]))))
