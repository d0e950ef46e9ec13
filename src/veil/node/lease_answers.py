"""A storage node's side of leases: it learns which stored share a lease pays for, and answers
the ledger's audit challenges with the challenged block and its Merkle proof (ledger/lease.py).

The lease on the ledger names only the share's block-tree root, so the uploader tells the node
where the share is (``POST /v1/pay/leases {lease, si, shnum}``); the node checks the lease on the
ledger (it pays this node) and finds the slot of ``si`` holding that share whose manifest's root
for it is the lease's root, then remembers ``lease -> (si, manifest hash, shnum)`` in
``payments/lease_shares.json`` (atomic, fsynced) and tells the payment gate to claim it.

A thread polls the node's leases every ``poll`` seconds (at most a quarter of the chain's
challenge window) and answers every open challenge with a ``lease_answer``; the answer carries
no fee (the challenge paid for it), so a node with an empty balance can answer too. Imports
from: client (ledger client), format, ledger, net, durable.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from typing import Any

from veil.client.ledger_client import LedgerClient
from veil.durable import write_atomic
from veil.errors import LedgerError, UsageError, VeilError
from veil.format import cbor
from veil.format.fields import get_bytes, get_int, require_map
from veil.format.manifest import parse_manifest
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.lease import Lease
from veil.net.server import Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.protocol.storage import parse_range_head
from veil.storage.store import ShareStore

log = logging.getLogger("veil.node.leases")

MAX_POLL = 30.0


class LeaseAnswers:
    def __init__(self, ctx: NodeContext, ledger: Any, keep_lease: Any) -> None:
        """``ledger()`` returns the node's LedgerClient; ``keep_lease(lid)`` hands a checked lease
        to the payment gate (which claims what it accrues)."""
        self.ctx = ctx
        self.key = ctx.key
        self.address = address_of(ctx.key.public_key)
        self._ledger = ledger
        self._keep = keep_lease
        self._path = ctx.data_dir / "payments" / "lease_shares.json"
        self._lock = threading.Lock()
        self.shares: dict[bytes, tuple[bytes, bytes, int]] = self._load()  # lease -> (si, manifest hash, shnum)
        self.answered = 0
        self._stop = threading.Event()
        self._wake = threading.Event()  # a new lease: start polling at once
        self._thread: threading.Thread | None = None

    def routes(self, router: Router) -> None:
        router.add("POST", "/v1/pay/leases", self._notice)

    # -- the uploader's notice -------------------------------------------------------------

    def _load(self) -> dict[bytes, tuple[bytes, bytes, int]]:
        try:
            raw = json.loads(self._path.read_text())
            return {bytes.fromhex(k): (bytes.fromhex(v[0]), bytes.fromhex(v[1]), int(v[2])) for k, v in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, IndexError) as e:
            log.error("cannot read %s: %s", self._path, e)
            return {}

    def _save_locked(self) -> None:
        write_atomic(self._path, json.dumps({k.hex(): [si.hex(), m.hex(), n]
                                             for k, (si, m, n) in self.shares.items()}).encode())  # fmt: skip

    def _store(self) -> ShareStore:
        store = self.ctx.services.store
        if store is None:
            raise UsageError("this node keeps no shares (no storage role)")
        return store

    def _notice(self, req: Request) -> Response:
        w = "lease notice"
        m = require_map(cbor.decode(req.read_body(1024), 1024), w, {"lease", "si", "shnum"})
        lid = get_bytes(m, "lease", w, 32)
        si = get_bytes(m, "si", w, 16)
        shnum = get_int(m, "shnum", w, 0, 254)
        self.remember(lid, si, shnum)
        return cbor_response({})

    def remember(self, lid: bytes, si: bytes, shnum: int) -> None:
        le = self._ledger().lease(lid)
        if le is None or le.payee != self.address:
            raise LedgerError("no such lease paying this node", "unknown_lease")
        store = self._store()
        slot = None
        for mhash in store.slots(si):  # the slot whose manifest names the lease's root for this share
            shnums, manifest = store.list_shares(si, mhash)
            if shnum in shnums and manifest is not None:
                man = parse_manifest(manifest)
                if shnum < len(man.roots) and man.roots[shnum] == le.root and le.nblocks == man.nseg:
                    slot = mhash
                    break
        if slot is None:
            raise LedgerError("this node holds no share with the lease's root", "bad_lease")
        with self._lock:
            self.shares[lid] = (si, slot, shnum)
            self._save_locked()
        self._keep(lid)
        self._wake.set()

    # -- answering challenges --------------------------------------------------------------

    def block_and_proof(self, si: bytes, mhash: bytes, shnum: int, index: int) -> tuple[bytes, list[bytes]]:
        """Block ``index`` of a stored share and its proof against the share's block root."""
        head, offset, length, path = self._store().read_range(si, mhash, shnum, index, 1)
        h = parse_range_head(head)
        fd = os.open(path, os.O_RDONLY)
        try:
            block = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return block, list(h.bproof)

    def answer(self, client: LedgerClient, lid: bytes, le: Lease) -> None:
        si, mhash, shnum = self.shares[lid]
        block, proof = self.block_and_proof(si, mhash, shnum, le.chal_index)
        chain = client.genesis().params.chain_id
        build = functools.partial(txm.lease_answer, self.key, chain, fee=0, lease=lid, block=block, proof=proof)
        client.submit_with_nonce(self.key, lambda n: build(nonce=n))
        self.answered += 1
        log.info("answered the challenge on lease %s (block %d)", lid.hex()[:16], le.chal_index)

    def check_once(self) -> int:
        """Answer every open challenge on this node's leases; returns how many were answered."""
        client = self._ledger()
        with self._lock:
            lids = sorted(self.shares)
        done = 0
        for lid in lids:
            le = client.lease(lid)
            if le is None:
                with self._lock:
                    self.shares.pop(lid, None)
                    self._save_locked()
                continue
            if le.challenge_open():
                try:
                    self.answer(client, lid, le)
                    done += 1
                except VeilError as e:  # the share is gone or damaged: the challenge will fail the lease
                    log.warning("cannot answer the challenge on lease %s: %s", lid.hex()[:16], e)
        return done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lease-answers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        poll = MAX_POLL
        while not self._stop.is_set():
            try:
                if self.shares:
                    window = self._ledger().genesis().params.challenge_seconds
                    poll = max(0.5, min(MAX_POLL, window / 4))
                    self.check_once()
            except VeilError as e:
                log.warning("lease challenges not checked, will retry: %s", e)
            except OSError as e:
                log.warning("lease challenges not checked (%s), will retry", e)
            self._wake.wait(poll)
            self._wake.clear()
