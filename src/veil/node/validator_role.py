"""The ``validator`` role: one member of the ledger's validator cluster, and the ledger API.

Needs ``DATA/ledger/genesis.cbor`` and the cluster secret ``DATA/ledger/cluster.key`` (made by
``veil ledger genesis`` or the devnet; every member has the same two files). The node's own
Raft address and its peers' come from the validator set in its store (genesis, then the
ledger); a validator that joins later (added by a ``validator_change``) and has no state yet
learns the current set from the members named in ``--validators NODEID@HOST:PORT,...``.
State lives in ``DATA/ledger/ledger.db``, the Raft journal in ``DATA/ledger/raft.journal``.

HTTP API (CBOR bodies; see docs/specs/ledger.md). Reads answer from this member's store and
carry ``stale: true`` when it is not in contact with a working majority.
  GET  /v1/ledger/info                      chain, heights (applied, final), hashes, params, supply
  GET  /v1/ledger/cluster                   this member's Raft view: role, leader, term, indexes
  GET  /v1/ledger/validators                the validator set in force
  GET  /v1/ledger/genesis                   the genesis bytes
  POST /v1/ledger/tx                        one transaction (raw bytes) -> {"id", "height"}
  POST /v1/ledger/txs                       [tx bytes, ...] -> {"results": [{"id", "height"} | {"error","message"}]}
  GET  /v1/ledger/tx/{txid-hex}             {"status": committed|unknown, ...}
  GET  /v1/ledger/account/{address}         balance, nonce, stake, allowance and quota, channels, nodes
  GET  /v1/ledger/node/{address}            a storage node's registration
  GET  /v1/ledger/channel/{id-hex}          one channel
  GET  /v1/ledger/lease/{id-hex}            one storage lease
  GET  /v1/ledger/leases/{address}          {"leases": [id, ...]} the address pays, is paid by or audits
  GET  /v1/ledger/block/{height}            {"header", "body", "sigs"}
  GET  /v1/ledger/blocks?from=N&limit=M     {"headers": [...]}
  GET  /v1/ledger/history/{address}?limit=M {"txs": [...]}
  GET  /v1/ledger/name/{name}               a name's record(s) with proofs against the newest final block
                                            (names_proof.py; 503 while that block's tree is not at hand)
  GET  /v1/ledger/names/{address}           {"names": [[name, record bytes], ...]} the address owns (unproven)
  GET  /v1/ledger/auction/{name}            {"auction": [bidder, bid, end, started]} (404: none)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from veil.crypto.sign import node_id
from veil.errors import LedgerError, NotFoundError, UsageError, VeilError
from veil.format import cbor
from veil.ledger.address import ADDRESS_SIZE, decode_address
from veil.ledger.genesis import decode_genesis
from veil.ledger.names import parse_name
from veil.ledger.state import ValidatorSet
from veil.ledger.store import LedgerStore
from veil.ledger.tx import MAX_ANSWER_SIZE, MAX_TX_SIZE
from veil.net.server import HTTPError, Request, Response, Router, cbor_response
from veil.node.context import NodeContext
from veil.node.validator_core import MAX_BATCH, LedgerMachine
from veil.node.validator_raft import Cluster

log = logging.getLogger("veil.validator")

GENESIS_FILE = "genesis.cbor"
SECRET_FILE = "cluster.key"
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


def read_secret(ldir: Path) -> bytes:
    path = ldir / SECRET_FILE
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError as e:
        raise UsageError(f"no cluster secret at {path}: copy it from another validator of this chain") from e
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageError(f"{path} is not a cluster secret (64 hex characters)")
    return raw


def current_set(store: LedgerStore, seeds: list[str], genesis_hash: bytes) -> ValidatorSet:
    """The validator set: from this store, or (a new member with an empty store) from a seed member."""
    vset = store.get_validators()
    if store.head()[0] > 0 or not seeds:
        return vset
    from veil.client.ledger_client import LedgerClient

    for seed in seeds:
        try:
            c = LedgerClient.from_endpoints([seed], genesis_hash=genesis_hash, timeout=5)
            try:
                remote = c.validators()
            finally:
                c.close()
            if remote.version >= vset.version:
                return remote
        except VeilError as e:
            log.warning("could not ask %s for the validator set: %s", seed, e)
    return vset


class ValidatorRole:
    name = "validator"

    def __init__(self) -> None:
        self.machine: LedgerMachine | None = None
        self.cluster: Cluster | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        ldir = ctx.data_dir / LEDGER_DIR
        gpath = ldir / GENESIS_FILE
        if not gpath.exists():
            raise UsageError(f"no genesis at {gpath}: create one with `veil ledger genesis --data {ctx.data_dir}`")
        genesis = decode_genesis(gpath.read_bytes())
        secret = read_secret(ldir)
        store = LedgerStore(ldir / "ledger.db")
        store.init_genesis(genesis)
        self.machine = LedgerMachine(store, ctx.key)
        vset = current_set(store, list(ctx.config.validators), genesis.hash)
        me = vset.member(ctx.key.public_key)
        if me is None:
            raise UsageError(f"this node ({node_id(ctx.key.public_key).hex()[:16]}…) is not in the validator set; "
                             "add it with `veil ledger validator add` first")  # fmt: skip
        election = ctx.config.election
        self.cluster = Cluster(self.machine, me.raft, [m.raft for m in vset.members], ldir, secret, election)
        r = router.add
        r("GET", "/v1/ledger/info", self._info)
        r("GET", "/v1/ledger/cluster", self._cluster)
        r("GET", "/v1/ledger/validators", self._validators)
        r("GET", "/v1/ledger/genesis", self._genesis)
        r("POST", "/v1/ledger/tx", self._submit_one)
        r("POST", "/v1/ledger/txs", self._submit_many)
        r("GET", "/v1/ledger/tx/{txid}", self._tx)
        r("GET", "/v1/ledger/account/{addr}", self._account)
        r("GET", "/v1/ledger/node/{addr}", self._node)
        r("GET", "/v1/ledger/channel/{cid}", self._channel)
        r("GET", "/v1/ledger/lease/{lid}", self._lease)
        r("GET", "/v1/ledger/leases/{addr}", self._leases)
        r("GET", "/v1/ledger/block/{height}", self._block)
        r("GET", "/v1/ledger/blocks", self._blocks)
        r("GET", "/v1/ledger/history/{addr}", self._history)
        r("GET", "/v1/ledger/name/{name}", self._name)
        r("GET", "/v1/ledger/names/{addr}", self._names)
        r("GET", "/v1/ledger/auction/{name}", self._auction)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
        if self.machine is not None:
            with self.machine.lock:
                self.machine.store.close()

    def status(self) -> dict[str, Any]:
        info = self._m.info()
        return {"chain": info["chain"], "height": info["height"], "final": info["final"], **self._c.status()}

    # -- handlers --------------------------------------------------------------------------

    @property
    def _m(self) -> LedgerMachine:
        assert self.machine is not None
        return self.machine

    @property
    def _c(self) -> Cluster:
        assert self.cluster is not None
        return self.cluster

    def _read(self, value: dict[str, Any]) -> Response:
        value["stale"] = not self._c.status()["quorum"]
        return cbor_response(value)

    def _info(self, req: Request) -> Response:
        return self._read(self._m.info())

    def _cluster(self, req: Request) -> Response:
        info = self._m.info()
        return cbor_response({**self._c.status(), "height": info["height"], "final": info["final"]})

    def _validators(self, req: Request) -> Response:
        with self._m.lock:
            vset = self._m.store.get_validators()
        return self._read({"version": vset.version, "members": [[m.pub, m.raft, m.api] for m in vset.members]})

    def _genesis(self, req: Request) -> Response:
        return Response(body=self._m.genesis.raw, content_type="application/cbor")

    def _submit_one(self, req: Request) -> Response:
        raw = req.read_body(MAX_ANSWER_SIZE)  # a lease answer is the one large kind; decode_tx bounds the rest
        v = self._c.submit([raw])[0]
        if v.error is not None:
            raise v.error
        return cbor_response(v.to_wire())

    def _submit_many(self, req: Request) -> Response:
        body = req.read_body(MAX_BATCH * (MAX_TX_SIZE + 8))
        try:
            items = cbor.decode(body, len(body))
        except Exception as e:
            raise LedgerError(f"batch is not canonical CBOR: {e}", "malformed") from e
        if not isinstance(items, list) or not all(isinstance(t, bytes) for t in items):
            raise LedgerError("batch must be an array of transactions", "malformed")
        return cbor_response({"results": [v.to_wire() for v in self._c.submit(items)]})

    def _tx(self, req: Request) -> Response:
        return self._read(self._m.tx_status(_hex32(req.params["txid"], "transaction id")))

    def _account(self, req: Request) -> Response:
        return self._read(self._m.account(_address(req.params["addr"])))

    def _node(self, req: Request) -> Response:
        n = self._m.node(_address(req.params["addr"]))
        if n is None:
            raise NotFoundError("no such registered node")
        return self._read(n)

    def _channel(self, req: Request) -> Response:
        ch = self._m.channel(_hex32(req.params["cid"], "channel id"))
        if ch is None:
            raise NotFoundError("no such open channel")
        return self._read(ch)

    def _lease(self, req: Request) -> Response:
        le = self._m.lease(_hex32(req.params["lid"], "lease id"))
        if le is None:
            raise NotFoundError("no such lease (never opened, or fully paid out)")
        return self._read(le)

    def _leases(self, req: Request) -> Response:
        return self._read({"leases": self._m.leases_of(_address(req.params["addr"]))})

    def _block(self, req: Request) -> Response:
        h = req.params["height"]
        if not h.isdigit() or len(h) > 18:
            raise HTTPError(400, "bad_request", "height must be an integer")
        blk = self._m.block(int(h))
        if blk is None:
            raise NotFoundError(f"no block at height {h}")
        return cbor_response(blk)

    def _blocks(self, req: Request) -> Response:
        start = _int(req, "from", 1, 2**62)
        limit = _int(req, "limit", 100, 1000)
        return cbor_response({"headers": self._m.headers(start, limit)})

    def _history(self, req: Request) -> Response:
        limit = _int(req, "limit", 50, 1000)
        return self._read({"txs": self._m.history(_address(req.params["addr"]), limit)})

    def _name(self, req: Request) -> Response:
        name = _name(req.params["name"])
        ans = self._m.name_answer(name)
        if ans is None:
            raise HTTPError(503, "busy", "the newest final block's names tree is not at hand yet; retry shortly")
        return self._read(ans)

    def _names(self, req: Request) -> Response:
        rows = self._m.names_of(_address(req.params["addr"]))
        return self._read({"names": [[n, r.encode()] for n, r in rows]})

    def _auction(self, req: Request) -> Response:
        name = _name(req.params["name"])
        with self._m.lock:
            a = self._m.store.get_auction(name)
        if a is None:
            raise NotFoundError(f"no auction of {name}.veil")
        return self._read({"auction": a.to_wire()})


def _name(text: str) -> str:
    try:
        return parse_name(text)
    except LedgerError as e:
        raise HTTPError(400, "bad_request", str(e)) from e
