"""Talking to a validator: submit transactions, read accounts, channels, blocks and history.

Wraps ``net.client.PeerClient``; answers are schema-checked here before callers see them.
"""

from __future__ import annotations

import time
from typing import Any

from veil.errors import LedgerError, NotFoundError, RemoteError, UnavailableError, UsageError
from veil.format import cbor
from veil.format.textparse import parse_hostport
from veil.ledger.address import ADDRESS_SIZE
from veil.ledger.genesis import Genesis, decode_genesis
from veil.ledger.lease import Lease
from veil.ledger.state import Channel
from veil.net.client import PeerClient


def parse_endpoint(text: str) -> tuple[str, int, bytes | None]:
    """``HOST:PORT`` or ``NODEID@HOST:PORT`` (NODEID = 64 hex characters, pinned)."""
    pin: bytes | None = None
    rest = text.strip()
    if "@" in rest:
        pid, rest = rest.split("@", 1)
        try:
            pin = bytes.fromhex(pid)
        except ValueError:
            pin = b""
        if len(pin) != 32:
            raise UsageError(f"bad validator {text!r}: the node id before '@' must be 64 hex characters")
    host, port = parse_hostport(rest, "validator (use HOST:PORT or NODEID@HOST:PORT)")
    return host, port, pin


def _channel(value: Any) -> tuple[bytes, Channel]:
    try:
        cid = value["id"]
        ch = Channel.from_wire(value["channel"])
        if not isinstance(cid, bytes) or len(cid) != 32 or len(ch.payer) != ADDRESS_SIZE:
            raise ValueError("bad channel id")
        return cid, ch
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise RemoteError(f"validator sent a malformed channel: {e}") from e


class LedgerClient:
    def __init__(self, host: str, port: int, node_id: bytes | None = None, timeout: float = 30.0) -> None:
        self.peer = PeerClient(host, port, node_id, timeout)
        self._genesis: Genesis | None = None

    @classmethod
    def from_endpoint(cls, text: str) -> LedgerClient:
        return cls(*parse_endpoint(text))

    def close(self) -> None:
        self.peer.close()

    def _get(self, path: str) -> dict[str, Any]:
        v = self.peer.call("GET", path)
        if not isinstance(v, dict):
            raise RemoteError(f"{self.peer.where}: unexpected answer to {path}")
        return v

    def info(self) -> dict[str, Any]:
        return self._get("/v1/ledger/info")

    def genesis(self) -> Genesis:
        if self._genesis is None:
            self._genesis = decode_genesis(self.peer.request("GET", "/v1/ledger/genesis", max_response=16 << 20).body)
        return self._genesis

    @property
    def chain(self) -> str:
        return self.genesis().params.chain_id

    def submit(self, raw: bytes) -> bytes:
        """Submit one transaction; returns its id, or raises LedgerError with the rule it broke."""
        r = self.peer.request("POST", "/v1/ledger/tx", raw, {"Content-Type": "application/cbor"})
        v = r.cbor()
        if not isinstance(v, dict) or not isinstance(v.get("id"), bytes):
            raise RemoteError(f"{self.peer.where}: malformed submit answer")
        txid: bytes = v["id"]
        return txid

    def submit_many(self, raws: list[bytes]) -> list[dict[str, Any]]:
        """Submit a batch; one ``{"id"}`` or ``{"error", "message"}`` per transaction."""
        body = cbor.encode(raws)
        r = self.peer.request("POST", "/v1/ledger/txs", body, {"Content-Type": "application/cbor"}, max_response=64 << 20)
        v = r.cbor(64 << 20)
        res = v.get("results") if isinstance(v, dict) else None
        if not isinstance(res, list) or len(res) != len(raws):
            raise RemoteError(f"{self.peer.where}: malformed batch answer")
        return res

    def account(self, addr: bytes) -> dict[str, Any]:
        v = self._get(f"/v1/ledger/account/{addr.hex()}")
        for k in ("balance", "nonce", "allowance_left", "epoch_ends"):
            if not isinstance(v.get(k), int):
                raise RemoteError(f"{self.peer.where}: malformed account ({k})")
        v["channels"] = [_channel(c) for c in v.get("channels", [])]
        return v

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
            raise RemoteError(f"{self.peer.where}: malformed lease list")
        return ids

    def tx(self, txid: bytes) -> dict[str, Any]:
        return self._get(f"/v1/ledger/tx/{txid.hex()}")

    def block(self, height: int) -> tuple[bytes, bytes] | None:
        try:
            v = self.peer.call("GET", f"/v1/ledger/block/{height}", max_response=256 << 20)
        except NotFoundError:
            return None
        if not isinstance(v, dict) or not isinstance(v.get("header"), bytes) or not isinstance(v.get("body"), bytes):
            raise RemoteError(f"{self.peer.where}: malformed block")
        return v["header"], v["body"]

    def headers(self, start: int, limit: int) -> list[bytes]:
        v = self._get(f"/v1/ledger/blocks?from={start}&limit={limit}")
        hs = v.get("headers")
        if not isinstance(hs, list) or not all(isinstance(h, bytes) for h in hs):
            raise RemoteError(f"{self.peer.where}: malformed block list")
        return hs

    def history(self, addr: bytes, limit: int = 50) -> list[dict[str, Any]]:
        v = self._get(f"/v1/ledger/history/{addr.hex()}?limit={limit}")
        txs = v.get("txs")
        if not isinstance(txs, list):
            raise RemoteError(f"{self.peer.where}: malformed history")
        return txs

    def next_nonce(self, addr: bytes) -> int:
        return int(self.account(addr)["nonce"])

    def wait_committed(self, txid: bytes, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the transaction is in a block; UnavailableError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            st = self.tx(txid)
            if st.get("status") == "committed":
                return st
            if st.get("status") == "unknown":
                raise LedgerError("the validator does not know this transaction", "unknown_tx")
            if time.monotonic() > deadline:
                raise UnavailableError(f"transaction {txid.hex()[:16]} not in a block after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
