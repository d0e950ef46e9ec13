"""The ``validator`` role: orders ledger transactions into blocks and serves the ledger API.

Needs ``DATA/ledger/genesis.cbor`` naming this node's key as validator (made by
``veil ledger genesis`` or the devnet). State lives in ``DATA/ledger/ledger.db``. A thread
seals the open block every ``block_interval`` seconds (config, default 0.25).

HTTP API (CBOR bodies; see docs/specs/ledger.md):
  GET  /v1/ledger/info                      chain, heights, hashes, params, supply
  GET  /v1/ledger/genesis                   the genesis bytes
  POST /v1/ledger/tx                        one transaction (raw bytes) -> {"id"}
  POST /v1/ledger/txs                       [tx bytes, ...] -> {"results": [{"id"} | {"error","message"}]}
  GET  /v1/ledger/tx/{txid-hex}             {"status": pending|committed|unknown, ...}
  GET  /v1/ledger/account/{address}         balance, nonce, allowance left, channels
  GET  /v1/ledger/channel/{id-hex}          one channel
  GET  /v1/ledger/lease/{id-hex}            one storage lease
  GET  /v1/ledger/leases/{address}          {"leases": [id, ...]} the address pays or is paid by
  GET  /v1/ledger/block/{height}            {"header", "body"}
  GET  /v1/ledger/blocks?from=N&limit=M     {"headers": [...]}
  GET  /v1/ledger/history/{address}?limit=M {"txs": [...]}
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from veil.errors import LedgerError, NotFoundError, UsageError
from veil.format import cbor
from veil.ledger.address import ADDRESS_SIZE, decode_address
from veil.ledger.genesis import decode_genesis
from veil.ledger.store import LedgerStore
from veil.ledger.tx import MAX_TX_SIZE
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.node.validator_core import MAX_BATCH, ValidatorCore

log = logging.getLogger("veil.validator")

GENESIS_FILE = "genesis.cbor"
LEDGER_DIR = "ledger"


def _hex32(s: str, what: str) -> bytes:
    try:
        b = bytes.fromhex(s)
    except ValueError:
        b = b""
    if len(b) != 32:
        raise HTTPError(400, "bad_request", f"{what} must be 64 hex characters")
    return b


def _address(s: str) -> bytes:
    if len(s) == 2 * ADDRESS_SIZE:
        return _hex32(s, "address")
    return decode_address(s)


def _int(req: Request, key: str, default: int, hi: int) -> int:
    v = req.query.get(key)
    if v is None:
        return default
    if not v.isdigit() or int(v) > hi:
        raise HTTPError(400, "bad_request", f"{key} must be an integer up to {hi}")
    return int(v)


class ValidatorRole:
    name = "validator"

    def __init__(self) -> None:
        self.core: ValidatorCore | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval = 0.25

    def attach(self, ctx: NodeContext, router: Router) -> None:
        ldir = ctx.data_dir / LEDGER_DIR
        gpath = ldir / GENESIS_FILE
        if not gpath.exists():
            raise UsageError(f"no genesis at {gpath}: create one with `veil ledger genesis --data {ctx.data_dir}`")
        genesis = decode_genesis(gpath.read_bytes())
        store = LedgerStore(ldir / "ledger.db")
        store.init_genesis(genesis)
        self.core = ValidatorCore(store, ctx.key)
        self.interval = float(ctx.config.get("block_interval", 0.25))
        r = router.add
        r("GET", "/v1/ledger/info", self._info)
        r("GET", "/v1/ledger/genesis", self._genesis)
        r("POST", "/v1/ledger/tx", self._submit_one)
        r("POST", "/v1/ledger/txs", self._submit_many)
        r("GET", "/v1/ledger/tx/{txid}", self._tx)
        r("GET", "/v1/ledger/account/{addr}", self._account)
        r("GET", "/v1/ledger/channel/{cid}", self._channel)
        r("GET", "/v1/ledger/lease/{lid}", self._lease)
        r("GET", "/v1/ledger/leases/{addr}", self._leases)
        r("GET", "/v1/ledger/block/{height}", self._block)
        r("GET", "/v1/ledger/blocks", self._blocks)
        r("GET", "/v1/ledger/history/{addr}", self._history)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="block-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.core is not None:
            self.core.seal()
            self.core.store.close()

    def status(self) -> dict[str, Any]:
        assert self.core is not None
        info = self.core.info()
        return {"chain": info["chain"], "height": info["height"], "pending": info["pending"]}

    def _run(self) -> None:
        assert self.core is not None
        while not self._stop.wait(self.interval):
            try:
                h = self.core.seal()
                if h is not None:
                    log.debug("sealed block %d with %d transactions", h.height, h.ntx)
            except Exception:
                log.exception("sealing a block failed; will retry")

    # -- handlers --------------------------------------------------------------------------

    @property
    def _core(self) -> ValidatorCore:
        assert self.core is not None
        return self.core

    def _info(self, req: Request) -> Response:
        return cbor_response(self._core.info())

    def _genesis(self, req: Request) -> Response:
        return Response(body=self._core.genesis.raw, content_type="application/cbor")

    def _submit_one(self, req: Request) -> Response:
        raw = req.read_body(MAX_TX_SIZE)
        v = self._core.submit([raw])[0]
        if v.error is not None:
            raise v.error
        return cbor_response({"id": v.txid})

    def _submit_many(self, req: Request) -> Response:
        body = req.read_body(MAX_BATCH * (MAX_TX_SIZE + 8))
        try:
            items = cbor.decode(body, len(body))
        except Exception as e:
            raise LedgerError(f"batch is not canonical CBOR: {e}", "malformed") from e
        if not isinstance(items, list) or not all(isinstance(t, bytes) for t in items):
            raise LedgerError("batch must be an array of transactions", "malformed")
        return cbor_response({"results": [v.to_wire() for v in self._core.submit(items)]})

    def _tx(self, req: Request) -> Response:
        return cbor_response(self._core.tx_status(_hex32(req.params["txid"], "transaction id")))

    def _account(self, req: Request) -> Response:
        return cbor_response(self._core.account(_address(req.params["addr"])))

    def _channel(self, req: Request) -> Response:
        ch = self._core.channel(_hex32(req.params["cid"], "channel id"))
        if ch is None:
            raise NotFoundError("no such open channel")
        return cbor_response(ch)

    def _lease(self, req: Request) -> Response:
        le = self._core.lease(_hex32(req.params["lid"], "lease id"))
        if le is None:
            raise NotFoundError("no such lease (never opened, or fully paid out)")
        return cbor_response(le)

    def _leases(self, req: Request) -> Response:
        return cbor_response({"leases": self._core.leases_of(_address(req.params["addr"]))})

    def _block(self, req: Request) -> Response:
        h = req.params["height"]
        if not h.isdigit() or len(h) > 18:
            raise HTTPError(400, "bad_request", "height must be an integer")
        blk = self._core.store_block(int(h))
        if blk is None:
            raise NotFoundError(f"no block at height {h}")
        return cbor_response({"header": blk[0], "body": blk[1]})

    def _blocks(self, req: Request) -> Response:
        start = _int(req, "from", 1, 2**62)
        limit = _int(req, "limit", 100, 1000)
        return cbor_response({"headers": self._core.headers(start, limit)})

    def _history(self, req: Request) -> Response:
        limit = _int(req, "limit", 50, 1000)
        return cbor_response({"txs": self._core.history(_address(req.params["addr"]), limit)})
