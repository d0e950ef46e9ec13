"""The storage role: storage protocol v2 over HTTP (docs/specs/storage-protocol.md) — slots
keyed by (storage index, manifest hash), upload sessions, one-shot small shares, block ranges
with Merkle proofs. Every check lives in the ShareStore (storage/); this module maps requests
to it and its errors to statuses (503 + Retry-After when the session bounds are hit).

Config keys (from `veil node run`): ``capacity`` (bytes; None = the disk's free space);
``storage_admission``: ``ticket`` (default: only with a storage ticket within the account's free
storage quota on the ledger at ``validator``, and within ``account_quota`` — default a quarter of
``capacity`` — whatever the stake; storage/admission.py) or ``open`` (anyone may store).

With the ``dht`` role on the same node, every committed share is announced with a signed
provider record (republished until withdrawn) and, once the node has joined, every storage
index already on disk is announced again: both go through the Announcer (node/announcer.py),
in batches, off the write path, so a put answers as soon as its share is durable. The store is
offered to other roles as ``ctx.services.store``. ``POST /v1/node/drain`` (only with the node's control token,
``DATA/control.token``, in ``X-Veil-Control``: proof of access to the node's data dir) hands
every share to other nodes (node/drain.py); meanwhile new uploads are refused.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from veil.client.ledger_client import LedgerClient
from veil.durable import write_atomic
from veil.errors import IntegrityError, NotAllowedError, UsageError, VeilError
from veil.format import cbor
from veil.format.manifest import MAX_MANIFEST, manifest_hash
from veil.format.merkle import Levels
from veil.format.share import HEADER_SIZE
from veil.net.dht_driver import DhtDriver
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.announcer import Announcer
from veil.node.context import NodeContext
from veil.node.drain import Drainer
from veil.node.metrics import Metrics
from veil.node.netview import node_network
from veil.protocol.storage import (
    MAX_CONTROL,
    MAX_DELETE_BODY,
    MAX_ONESHOT_BODY,
    MAX_UPLOAD_BODY,
    parse_commit,
    parse_delete,
    parse_mhash,
    parse_si,
    parse_upload_request,
)
from veil.protocol.tickets import TICKET_HEADER
from veil.storage.admission import Admission, Hold
from veil.storage.sessions import SessionsFull
from veil.storage.store import ConflictError, ShareStore

CHUNK = 1 << 20
ACCOUNT_SHARE = 4  # without --account-quota, one account keeps at most capacity / 4 here
CONTROL_HEADER = "X-Veil-Control"
_local = threading.local()
log = logging.getLogger("veil.storage")


def _chunk_buffer() -> memoryview:
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(CHUNK))
    return buf


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
        self.admission: Admission | None = None
        self._ledger: LedgerClient | None = None
        self._quotas: dict[bytes, tuple[float, int]] = {}
        self.announcer = Announcer(self._dht, self._shares_of)

    def attach(self, ctx: NodeContext, router: Router) -> None:
        cap = ctx.config.capacity
        self.ctx = ctx
        self.store = ShareStore(ctx.data_dir / "storage", capacity=cap if cap else None)
        ctx.services.store = self.store
        ctx.services.draining = lambda: self.draining
        self._token = _control_token(ctx.data_dir / "control.token")
        policy = ctx.config.storage_admission
        if policy == "ticket":
            if not ctx.config.validator:
                raise UsageError("--storage-admission ticket needs --validator (the ledger holding the quotas)")
            self.admission = Admission(ctx.data_dir / "storage" / "charges.sqlite", ctx.node_id, self._quota_of,
                                       self.store.sessions.alive)
            self.store.on_delete = self.admission.refund
        elif policy != "open":
            raise UsageError(f"unknown storage admission policy {policy!r} (open or ticket)")
        router.add("POST", "/v1/node/drain", self.drain)
        router.add("GET", "/v1/node/drain", self.drain_status)
        router.add("POST", "/v1/uploads", self.begin)
        router.add("PUT", "/v1/uploads/{uid}", self.write)
        router.add("POST", "/v1/uploads/{uid}/commit", self.commit)
        router.add("DELETE", "/v1/uploads/{uid}", self.abort)
        router.add("PUT", "/v1/shares/{si}/{shnum}", self.oneshot)
        router.add("GET", "/v1/shares/{si}", self.list_shares)
        router.add("DELETE", "/v1/shares/{si}", self.delete_slot)
        router.add("GET", "/v1/shares/{si}/{shnum}", self.read)

    def start(self) -> None:
        self.announcer.start()
        threading.Thread(target=self._announce_all, name="provide-all", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.announcer.stop()
        if self.store is not None:
            self.store.close()
        if self.admission is not None:
            self.admission.close()

    def status(self) -> dict[str, Any]:
        assert self.store is not None
        st: dict[str, Any] = dict(self.store.usage())
        st["admission"] = "ticket" if self.admission is not None else "open"
        if self.drainer is not None:
            st["drain"] = self.drainer.status.to_value()
        a = self.announcer
        st["announce"] = {"queued": a.queued, "batches": a.batches, "announced": a.announced}
        return st

    # -- announcing and draining --------------------------------------------------------

    def _dht(self) -> DhtDriver | None:
        return self.ctx.services.dht if self.ctx is not None else None

    def _shares_of(self, si: bytes) -> tuple[int, ...]:
        """Every share number this node holds of ``si`` (over all its slots)."""
        return tuple(sorted({n for m in self._store.slots(si) for n in self._store.list_shares(si, m)[0]}))

    def _announce_all(self) -> None:
        """Queue every storage index on disk for announcing (after a restart; the announcer
        waits for the DHT to join)."""
        if self._dht() is None:
            return
        chunk: list[bytes] = []
        for si in self._store.storage_indexes():
            chunk.append(si)
            if len(chunk) >= 1024:
                if self._stop.is_set():
                    return
                self.announcer.add_all(chunk)
                chunk = []
        self.announcer.add_all(chunk)

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

    def _metrics(self) -> Metrics:
        assert self.ctx is not None
        return self.ctx.metrics

    @property
    def _store(self) -> ShareStore:
        assert self.store is not None
        return self.store

    def _refuse_if_draining(self) -> None:
        if self.draining:
            raise HTTPError(503, "draining", "this node is leaving the network and takes no new shares")

    # -- admission (storage/admission.py) -----------------------------------------------

    def _quota_of(self, account: bytes) -> int:
        """The account's free storage quota on the ledger, looked up at most once a minute."""
        now = time.monotonic()
        hit = self._quotas.get(account)
        if hit is not None and now - hit[0] < 60:
            return hit[1]
        if self._ledger is None:
            assert self.ctx is not None
            assert self.ctx.config.validator is not None
            self._ledger = LedgerClient.from_endpoint(self.ctx.config.validator)
        quota = min(int(self._ledger.account(account)["storage_quota"]), self._node_cap())
        if len(self._quotas) > 4096:
            self._quotas.clear()
        self._quotas[account] = (now, quota)
        return quota

    def _node_cap(self) -> int:
        """This node's own bound on one account's bytes here (``--account-quota``; default a quarter
        of ``--capacity``), whatever stake the account has: one staked client cannot fill the disk."""
        assert self.ctx is not None
        cfg = self.ctx.config
        if cfg.account_quota is not None:
            return cfg.account_quota
        return cfg.capacity // ACCOUNT_SHARE if cfg.capacity else 2**63

    def _admit(self, req: Request, si: bytes, nbytes: int) -> Hold | None:
        if self.admission is None:
            return None
        self._store.check_room(nbytes)  # "no space" (507) before "who are you" (402)
        return self.admission.admit(req.headers.get(TICKET_HEADER), si, nbytes)

    def _release(self, hold: Hold | None) -> None:
        if self.admission is not None:
            self.admission.release(hold)

    # -- the storage API ------------------------------------------------------------------

    def begin(self, req: Request) -> Response:
        self._refuse_if_draining()
        up = parse_upload_request(cbor.decode(req.read_body(MAX_CONTROL), MAX_CONTROL))
        hold = self._admit(req, up.si, HEADER_SIZE + up.share_len + 2 * Levels.stored_size(up.nseg))
        try:
            uid = self._store.begin_upload(up, peer=str(req.peer[0]))
        except SessionsFull as e:
            self._release(hold)
            raise HTTPError(503, "busy", str(e), {"Retry-After": str(e.retry_after)}) from e
        except BaseException:
            self._release(hold)
            raise
        if hold is not None and self.admission is not None:
            self.admission.bind(hold, uid)
        return cbor_response({"id": uid})

    def write(self, req: Request) -> Response:
        n = req.content_length
        if n > MAX_UPLOAD_BODY:
            raise HTTPError(413, "too_large", f"upload body of {n} bytes exceeds {MAX_UPLOAD_BODY}")
        # The session and the body's size are checked before a byte of it is read.
        nxt = self._store.write_blocks_from(req.params["uid"], req.int_param("start"), n, req.readinto_exact)
        self._metrics().share_bytes_received.inc(n)
        return cbor_response({"next": nxt})

    def commit(self, req: Request) -> Response:
        limit = MAX_CONTROL + MAX_MANIFEST
        c = parse_commit(cbor.decode(req.read_body(limit), limit))
        uid = req.params["uid"]
        hold = self.admission.hold_of(uid) if self.admission is not None else None

        def store() -> tuple[bytes, bytes, bytes, int]:
            up = self._store.upload_request(uid)
            return self._store.commit_upload(uid, c), up.si, manifest_hash(c.manifest), up.shnum

        return self._store_admitted(hold, store)

    def oneshot(self, req: Request) -> Response:
        self._refuse_if_draining()
        si = parse_si(req.params["si"])
        shnum = _shnum(req.params["shnum"])
        n = req.content_length
        if n > MAX_ONESHOT_BODY:
            raise HTTPError(413, "too_large", f"one-shot share of {n} bytes exceeds {MAX_ONESHOT_BODY}")
        try:
            hold = self._admit(req, si, n)
        except VeilError:
            # Refused before the body was read: read it (at most MAX_ONESHOT_BODY, into the reused
            # chunk buffer) so the client, still sending, gets the 402/400 and not a reset.
            buf = _chunk_buffer()
            while req.remaining:
                req.readinto_exact(buf[: min(len(buf), req.remaining)])
            raise

        def store() -> tuple[bytes, bytes, bytes, int]:
            root, mhash = self._store.put_oneshot_from(si, shnum, n, req.readinto_exact)
            self._metrics().share_bytes_received.inc(n)
            return root, si, mhash, shnum

        return self._store_admitted(hold, store)

    def _store_admitted(self, hold: Hold | None, store: Callable[[], tuple[bytes, bytes, bytes, int]]) -> Response:
        """Run ``store`` (-> root, si, mhash, shnum); charge the admission hold for what was stored,
        or release it if nothing was; announce the share."""
        try:
            root, si, mhash, shnum = store()
        except ConflictError as e:
            self._release(hold)
            raise HTTPError(409, "conflict", str(e)) from e
        except BaseException:
            self._release(hold)
            raise
        if hold is not None and self.admission is not None:
            self.admission.charge(hold, si, mhash, shnum)
        self._metrics().shares_stored.inc()
        log.info("stored share %d of %s", shnum, si.hex()[:16])  # (no peer address: who stores what is not logged)
        self.announcer.add(si)  # announced in the background, in a batch (node/announcer.py)
        return cbor_response({"root": root})

    def abort(self, req: Request) -> Response:
        if self.admission is not None:
            self.admission.release(self.admission.hold_of(req.params["uid"]))
        self._store.abort_upload(req.params["uid"])
        return cbor_response({})

    def list_shares(self, req: Request) -> Response:
        si = parse_si(req.params["si"])
        shnums, manifest = self._store.list_shares(si, parse_mhash(req.query.get("m")))
        return cbor_response({"shares": shnums, "manifest": manifest})

    def delete_slot(self, req: Request) -> Response:
        si = parse_si(req.params["si"])
        mhash = parse_mhash(req.query.get("m"))
        if req.content_length > MAX_DELETE_BODY:
            raise HTTPError(413, "too_large", f"a delete request is at most {MAX_DELETE_BODY} bytes")
        key = parse_delete(cbor.decode(req.read_body(MAX_DELETE_BODY), MAX_DELETE_BODY))
        try:
            gone = self._store.delete_slot(si, mhash, key)
        except NotAllowedError as e:
            raise HTTPError(403, "not_yours", str(e)) from e
        if gone:
            log.info("deleted %d shares of %s at its uploader's request", len(gone), si.hex()[:16])
        return cbor_response({"deleted": gone})

    def read(self, req: Request) -> Response:
        si = parse_si(req.params["si"])
        shnum = _shnum(req.params["shnum"])
        mhash = parse_mhash(req.query.get("m"))
        try:
            head, offset, length, path = self._store.read_range(
                si, mhash, shnum, req.int_param("start", 0), req.int_param("count", 1),
                with_manifest=req.query.get("manifest") == "1",
            )
        except IntegrityError as e:
            log.error("stored share %d of %s is damaged: %s", shnum, si.hex()[:16], e)
            raise HTTPError(500, "corrupt_share", f"stored share is damaged: {e}") from e
        # A charging node (payments role, node/payments_role.py) is paid before a byte is sent;
        # the payout it checks is the one in this slot's manifest.
        gate = self.ctx.services.payments if self.ctx is not None else None
        refusal: Response | None = gate.charge(req, si, length, mhash) if gate is not None else None
        if refusal is not None:
            return refusal
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as e:  # deleted (drained) since the range was planned
            raise HTTPError(404, "not_found", "no such share") from e
        m = self._metrics()
        m.shares_served.inc()
        m.share_bytes_served.inc(length)
        log.info("serving share %d of %s: %d bytes", shnum, si.hex()[:16], length)  # (no peer: who reads what is not logged)

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
