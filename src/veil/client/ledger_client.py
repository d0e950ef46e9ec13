"""Talking to the validator cluster: submit transactions, read accounts, channels, blocks.

A ``LedgerClient`` knows every validator (``NODEID@HOST:PORT``, each pinned by node id: an
unpinned endpoint is refused) and fails over by itself: a validator that cannot be reached or
answers 503 costs a retry at the next one. A write is safe to retry anywhere, because the
ledger acknowledges a transaction that is already in a block again instead of applying it
twice. With no majority reachable, a write fails with "ledger unavailable: R of N validators
reachable, M needed"; reads answer from any member and say whether they may be stale.

With ``genesis_hash`` the client refuses a validator serving another genesis (a fake chain).
Answers are schema-checked here before callers see them. ``submit_with_nonce`` is the one
"build with the next nonce, submit, retry on a nonce race" helper.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, NotFoundError, RemoteError, UnavailableError, UsageError, VeilError
from veil.format import cbor
from veil.format.textparse import parse_hostport
from veil.ledger.address import ADDRESS_SIZE, address_of
from veil.ledger.genesis import Genesis, decode_genesis
from veil.ledger.lease import Lease
from veil.ledger.state import Channel, NodeReg, Validator, ValidatorSet
from veil.net.client import PeerClient, raise_for_reply

Endpoint = tuple[str, int, bytes]
NONCE_RETRIES = 8


def parse_endpoint(text: str) -> Endpoint:
    """``NODEID@HOST:PORT`` (NODEID = 64 hex characters, the validator's pinned node id)."""
    rest = text.strip()
    if "@" not in rest:
        raise UsageError(f"validator {text!r} is not pinned: use NODEID@HOST:PORT (the node id is printed by "
                         "`veil node run` and listed in the network file); an unpinned ledger endpoint "
                         "could be anyone")  # fmt: skip
    pid, rest = rest.split("@", 1)
    try:
        pin = bytes.fromhex(pid)
    except ValueError:
        pin = b""
    if len(pin) != 32:
        raise UsageError(f"bad validator {text!r}: the node id before '@' must be 64 hex characters")
    host, port = parse_hostport(rest, "validator (use NODEID@HOST:PORT)")
    return host, port, pin


def parse_endpoints(text: str) -> list[Endpoint]:
    """A comma-separated list of ``NODEID@HOST:PORT``."""
    eps = [parse_endpoint(t) for t in text.split(",") if t.strip()]
    if not eps:
        raise UsageError("no validator given (NODEID@HOST:PORT[,...])")
    return eps


def _channel(value: Any) -> tuple[bytes, Channel]:
    try:
        cid = value["id"]
        ch = Channel.from_wire(value["channel"])
        if not isinstance(cid, bytes) or len(cid) != 32 or len(ch.payer) != ADDRESS_SIZE:
            raise ValueError("bad channel id")
        return cid, ch
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise RemoteError(f"validator sent a malformed channel: {e}") from e


def unavailable(reachable: int, members: int) -> UnavailableError:
    need = members // 2 + 1
    return UnavailableError(f"ledger unavailable: {reachable} of {members} validators reachable, {need} needed")


class LedgerClient:
    def __init__(self, endpoints: Sequence[Endpoint], genesis_hash: bytes | None = None, timeout: float = 30.0) -> None:
        if not endpoints:
            raise UsageError("no validator to talk to")
        self.endpoints = list(endpoints)
        self.genesis_hash = genesis_hash
        self.timeout = timeout
        self._peers: dict[int, PeerClient] = {}
        self._cur = 0
        self._genesis: Genesis | None = None
        self._lock = threading.Lock()
        self.last_stale = False  # the last read came from a member out of touch with a majority

    @classmethod
    def from_endpoints(cls, specs: Sequence[str], genesis_hash: bytes | None = None, timeout: float = 30.0) -> LedgerClient:
        return cls([e for s in specs for e in parse_endpoints(s)], genesis_hash, timeout)

    @classmethod
    def from_network(cls, net: Any) -> LedgerClient | None:
        """Every validator a network file lists (pinned by node id), with its genesis hash pinned;
        None when it lists no validator."""
        eps = [(n.host, n.port, n.node_id) for n in net.nodes if "validator" in n.roles]
        pin = net.extra.get("genesis")
        return cls(eps, bytes.fromhex(pin) if isinstance(pin, str) and len(pin) == 64 else None) if eps else None

    @classmethod
    def from_endpoint(cls, text: str, genesis_hash: bytes | None = None) -> LedgerClient:
        return cls(parse_endpoints(text), genesis_hash)

    def close(self) -> None:
        with self._lock:
            for p in self._peers.values():
                p.close()
            self._peers.clear()

    def _peer(self, i: int) -> PeerClient:
        with self._lock:
            p = self._peers.get(i)
            if p is None:
                host, port, pin = self.endpoints[i]
                p = self._peers[i] = PeerClient(host, port, pin, self.timeout)
            return p

    @property
    def where(self) -> str:
        host, port, _ = self.endpoints[self._cur]
        return f"validator {host}:{port}"

    def request(self, method: str, path: str, body: bytes | None = None, max_response: int = 1 << 20,
                write: bool = False, raw: bool = False) -> Any:  # fmt: skip
        """One CBOR round trip, failing over across validators; returns the decoded answer."""
        n = len(self.endpoints)
        reached = 0
        busy = ""
        hdrs = {"Content-Type": "application/cbor"} if body is not None else {}
        for k in range(n):
            i = (self._cur + k) % n
            peer = self._peer(i)
            try:
                r = peer.request(method, path, body, hdrs, max_response, check=False)
            except UnavailableError:
                continue  # unreachable: try the next validator
            reached += 1
            if r.status == 503:
                busy = _message(r.body) or busy
                continue
            if r.status >= 300:
                raise_for_reply(r.status, r.body, peer.where)
            self._cur = i
            if not raw:
                v = r.cbor(max_response)
                if isinstance(v, dict):
                    self.last_stale = bool(v.pop("stale", False))
                return v
            return r.body
        if write or not reached:
            if reached * 2 <= n:
                raise unavailable(reached, n)
            raise UnavailableError(busy or f"ledger unavailable: no validator took the request ({reached} of {n} reachable)")
        raise UnavailableError(busy or "ledger unavailable")

    def _get(self, path: str, max_response: int = 1 << 20) -> dict[str, Any]:
        v = self.request("GET", path, max_response=max_response)
        if not isinstance(v, dict):
            raise RemoteError(f"{self.where}: unexpected answer to {path}")
        return v

    def info(self) -> dict[str, Any]:
        return self._get("/v1/ledger/info")

    def cluster(self, i: int) -> dict[str, Any]:
        """One member's own view (no failover): role, leader, term, heights."""
        v = self._peer(i).call("GET", "/v1/ledger/cluster")
        if not isinstance(v, dict):
            raise RemoteError("validator sent a malformed cluster status")
        return v

    def genesis(self) -> Genesis:
        if self._genesis is None:
            body = self.request("GET", "/v1/ledger/genesis", max_response=16 << 20, raw=True)
            g = decode_genesis(body)
            if self.genesis_hash is not None and g.hash != self.genesis_hash:
                raise LedgerError(f"{self.where} serves genesis {g.hash.hex()[:16]}…, not the pinned "
                                  f"{self.genesis_hash.hex()[:16]}…: another chain, or a fake one", "wrong_chain")  # fmt: skip
            self._genesis = g
        return self._genesis

    @property
    def chain(self) -> str:
        """The chain id every signed object carries: the genesis hash in hex."""
        return self.genesis().chain

    def validators(self) -> ValidatorSet:
        v = self._get("/v1/ledger/validators")
        try:
            return ValidatorSet(int(v["version"]), tuple(Validator(bytes(p), str(r), str(a)) for p, r, a in v["members"]))
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"{self.where}: malformed validator set") from e

    def submit(self, raw: bytes) -> bytes:
        """Submit one transaction; returns its id once it is in a block, or raises LedgerError."""
        v = self.request("POST", "/v1/ledger/tx", raw, write=True)
        if not isinstance(v, dict) or not isinstance(v.get("id"), bytes):
            raise RemoteError(f"{self.where}: malformed submit answer")
        txid: bytes = v["id"]
        return txid

    def submit_many(self, raws: list[bytes]) -> list[dict[str, Any]]:
        """Submit a batch; one ``{"id", "height"}`` or ``{"error", "message"}`` per transaction."""
        v = self.request("POST", "/v1/ledger/txs", cbor.encode(raws), max_response=64 << 20, write=True)
        res = v.get("results") if isinstance(v, dict) else None
        if not isinstance(res, list) or len(res) != len(raws):
            raise RemoteError(f"{self.where}: malformed batch answer")
        return res

    def submit_with_nonce(self, key: SigningKey, build: Callable[[int], bytes], nonce: int | None = None) -> tuple[bytes, int]:
        """Build a transaction of ``key``'s account with its next nonce, submit, and retry with a
        fresh nonce when another transaction of the same account took it. Returns (txid, nonce)."""
        addr = address_of(key.public_key)
        for _ in range(NONCE_RETRIES):
            n = self.next_nonce(addr) if nonce is None else nonce
            try:
                return self.submit(build(n)), n
            except LedgerError as e:
                if e.code != "bad_nonce":
                    raise
                nonce = None
        raise LedgerError("could not get a transaction in (its nonce kept being taken)", "bad_nonce")

    def account(self, addr: bytes) -> dict[str, Any]:
        v = self._get(f"/v1/ledger/account/{addr.hex()}")
        for k in ("balance", "nonce", "allowance_left", "epoch_ends", "stake", "storage_quota"):
            if not isinstance(v.get(k), int):
                raise RemoteError(f"{self.where}: malformed account ({k})")
        v["channels"] = [_channel(c) for c in v.get("channels", [])]
        return v

    def node(self, addr: bytes) -> NodeReg | None:
        try:
            v = self._get(f"/v1/ledger/node/{addr.hex()}")
            return NodeReg.from_wire(v["reg"])
        except NotFoundError:
            return None
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"{self.where}: malformed node registration") from e

    def channel(self, cid: bytes) -> Channel | None:
        try:
            return _channel(self._get(f"/v1/ledger/channel/{cid.hex()}"))[1]
        except NotFoundError:
            return None

    def lease(self, lid: bytes) -> Lease | None:
        try:
            v = self._get(f"/v1/ledger/lease/{lid.hex()}")
        except NotFoundError:
            return None
        try:
            return Lease.from_wire(v["lease"])
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"validator sent a malformed lease: {e}") from e

    def leases_of(self, addr: bytes) -> list[bytes]:
        ids = self._get(f"/v1/ledger/leases/{addr.hex()}").get("leases")
        if not isinstance(ids, list) or not all(isinstance(i, bytes) and len(i) == 32 for i in ids):
            raise RemoteError(f"{self.where}: malformed lease list")
        return ids

    def tx(self, txid: bytes) -> dict[str, Any]:
        return self._get(f"/v1/ledger/tx/{txid.hex()}", 4 << 20)  # a lease answer carries a share block

    def block(self, height: int) -> tuple[bytes, bytes, bytes] | None:
        """(header, body, certificate) of block ``height``."""
        try:
            v = self.request("GET", f"/v1/ledger/block/{height}", max_response=256 << 20)
        except NotFoundError:
            return None
        if not isinstance(v, dict) or not all(isinstance(v.get(k), bytes) for k in ("header", "body", "sigs")):
            raise RemoteError(f"{self.where}: malformed block")
        return v["header"], v["body"], v["sigs"]

    def headers(self, start: int, limit: int) -> list[bytes]:
        v = self._get(f"/v1/ledger/blocks?from={start}&limit={limit}")
        hs = v.get("headers")
        if not isinstance(hs, list) or not all(isinstance(h, bytes) for h in hs):
            raise RemoteError(f"{self.where}: malformed block list")
        return hs

    def history(self, addr: bytes, limit: int = 50) -> list[dict[str, Any]]:
        v = self._get(f"/v1/ledger/history/{addr.hex()}?limit={limit}", 64 << 20)  # lease answers are large
        txs = v.get("txs")
        if not isinstance(txs, list):
            raise RemoteError(f"{self.where}: malformed history")
        return txs

    def next_nonce(self, addr: bytes) -> int:
        return int(self.account(addr)["nonce"])

    def wait_committed(self, txid: bytes, timeout: float = 30.0) -> dict[str, Any]:
        """The transaction's block. ``submit`` returns only once it is in one, so this is a lookup
        (it tolerates a member that has not applied that block yet, for ``timeout`` seconds)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            st = self.tx(txid)
            if st.get("status") == "committed":
                return st
            if time.monotonic() > deadline:
                raise LedgerError("the validators do not know this transaction", "unknown_tx")
            time.sleep(0.05)


def _message(body: bytes) -> str:
    try:
        v = cbor.decode(body, 64 * 1024)
        return str(v.get("message", ""))[:300] if isinstance(v, dict) else ""
    except VeilError:
        return ""
