"""The validator's core, without HTTP: accept transactions into the open block, seal blocks,
answer queries. The HTTP role (validator_role.py) and the benchmark drive it.

The open block has its time fixed when its first transaction arrives, so every transaction
is checked against exactly the rules (and time) it will be committed under: a submit
returns the final verdict. An accepted transaction is written to the mempool table before
the submit returns; ``seal`` then commits the open block in one SQLite transaction. After a
crash, the mempool is re-applied into a new open block in the order it was accepted.

Single validator: consensus among several (Raft, DESIGN.md) is a later step; the block
format already carries the validator key so a cluster can sign the same headers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from veil.crypto.sigbatch import verify_many
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, UsageError
from veil.ledger.address import address_of
from veil.ledger.block import BlockHeader, decode_body, encode_body, make_header
from veil.ledger.state import BlockEnv, Overlay, allowance_left, apply_tx, epoch_of, next_state_hash
from veil.ledger.store import LedgerStore
from veil.ledger.tx import Tx, decode_tx

log = logging.getLogger("veil.validator")

MAX_BLOCK_TXS = 50_000
MAX_BATCH = 10_000


@dataclass(frozen=True)
class Verdict:
    txid: bytes | None
    error: LedgerError | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error.code, "message": str(self.error)}
        return {"id": self.txid}


def _parties(tx: Tx, payer: bytes, payee: bytes) -> tuple[bytes, ...]:
    """Who a channel transaction concerns, for history: payer, payee and, for a settle, the
    uploaders its cheque rewards (so `veil account` can show what an uploader earned)."""
    ups = tuple(a for a, _ in tx.cheque.uploaders if a not in (payer, payee)) if tx.cheque is not None else ()
    return (payer, payee, *ups)


class ValidatorCore:
    def __init__(
        self, store: LedgerStore, key: SigningKey, clock: Callable[[], float] = time.time, max_block_txs: int = MAX_BLOCK_TXS
    ) -> None:
        g = store.genesis()
        if g is None:
            raise UsageError("the validator store has no genesis")
        if g.validator != key.public_key:
            raise UsageError("this node's key is not the validator named in genesis")
        self.store = store
        self.genesis = g
        self.params = g.params
        self.key = key
        self.address = address_of(key.public_key)
        self.clock = clock
        self.max_block_txs = max_block_txs
        self._lock = threading.RLock()
        self._reset_open()
        self._recover()

    # -- the open block --------------------------------------------------------------------

    def _reset_open(self) -> None:
        self._open = Overlay(self.store)
        self._txs: list[Tx] = []
        self._ids: dict[bytes, int] = {}
        self._time: int | None = None
        self._upto = 0

    def _env(self) -> BlockEnv:
        if self._time is None:
            _, _, head_time, _ = self.store.head()
            self._time = max(int(self.clock()), head_time)
        return BlockEnv(self.params, self.genesis.time, self._time, self.address)

    def _recover(self) -> None:
        pending = self.store.mempool()
        if not pending:
            return
        dropped = []
        for seq, raw in pending:
            try:
                tx = decode_tx(raw)
                tx.verify_signature()
                child = Overlay(self._open)
                apply_tx(child, tx, self._env())
            except LedgerError as e:
                # Cannot happen for transactions accepted under the same rules in the same order;
                # kept so a damaged store does not stop the validator.
                log.error("mempool transaction %d no longer applies (%s); dropping it", seq, e)
                dropped.append(seq)
                continue
            self._open.merge(child)
            if tx.channel and (ch := self._open.get_channel(tx.channel)) is not None:
                tx.parties = _parties(tx, ch.payer, ch.payee)
            self._ids[tx.txid] = len(self._txs)
            self._txs.append(tx)
            self._upto = seq
        if dropped:
            self.store.mempool_drop(dropped)
        log.info("recovered %d pending transactions from the mempool", len(self._txs))

    def submit(self, raws: Sequence[bytes]) -> list[Verdict]:
        """Check and accept a batch; one verdict per transaction, in order."""
        if len(raws) > MAX_BATCH:
            raise LedgerError(f"at most {MAX_BATCH} transactions per batch", "oversized")
        out: list[Verdict | None] = [None] * len(raws)
        decoded: list[tuple[int, Tx]] = []
        for i, raw in enumerate(raws):
            try:
                decoded.append((i, decode_tx(raw)))
            except LedgerError as e:
                out[i] = Verdict(None, e)
        # Signatures outside the lock, on every core.
        ok = verify_many([t.signature_item() for _, t in decoded])
        good: list[tuple[int, Tx]] = []
        for (i, t), v in zip(decoded, ok, strict=True):
            if v:
                good.append((i, t))
            else:
                out[i] = Verdict(t.txid, LedgerError("transaction signature does not verify", "bad_signature"))
        with self._lock:
            if len(self._txs) + len(good) > self.max_block_txs:
                self._seal_locked()
            env = self._env()
            child = Overlay(self._open)
            accepted: list[Tx] = []
            seen: set[bytes] = set()
            for i, t in good:
                if t.txid in self._ids or t.txid in seen or self.store.tx_location(t.txid):
                    out[i] = Verdict(t.txid)  # already accepted: submitting again is harmless
                    continue
                ch = child.get_channel(t.channel) if t.channel else None
                try:
                    apply_tx(child, t, env)
                except LedgerError as e:
                    out[i] = Verdict(t.txid, e)
                    continue
                if ch is not None:
                    t.parties = _parties(t, ch.payer, ch.payee)
                accepted.append(t)
                seen.add(t.txid)
                out[i] = Verdict(t.txid)
            if accepted:
                self._upto = self.store.mempool_add([(t.txid, t.raw) for t in accepted])
                self._open.merge(child)
                for t in accepted:
                    self._ids[t.txid] = len(self._txs)
                    self._txs.append(t)
            elif not self._txs:
                self._time = None
        return [v if v is not None else Verdict(None, LedgerError("not processed", "internal")) for v in out]

    def seal(self) -> BlockHeader | None:
        """Commit the open block (if it holds anything); returns its header."""
        with self._lock:
            return self._seal_locked()

    def _seal_locked(self) -> BlockHeader | None:
        if not self._txs:
            return None
        height, head_hash, _, state_hash = self.store.head()
        env = self._env()
        new_state = next_state_hash(state_hash, self._open)
        header = make_header(
            self.key, self.params.chain_id, height + 1, head_hash, env.time, [t.txid for t in self._txs], new_state
        )
        self.store.commit_block(header, encode_body([t.raw for t in self._txs]), self._txs, self._open, self._upto)
        self._reset_open()
        return header

    # -- queries ---------------------------------------------------------------------------

    def pending_count(self) -> int:
        with self._lock:
            return len(self._txs)

    def info(self) -> dict[str, Any]:
        with self._lock:
            height, head_hash, head_time, state_hash = self.store.head()
            supply = self._open.get_supply()
            return {
                "chain": self.params.chain_id,
                "genesis_hash": self.genesis.hash,
                "genesis_time": self.genesis.time,
                "validator": self.key.public_key,
                "height": height,
                "head_hash": head_hash,
                "head_time": head_time,
                "state_hash": state_hash,
                "minted": supply.minted,
                "pool": supply.pool,
                "pending": len(self._txs),
                "params": self.params.to_wire(),
                "now": int(self.clock()),
            }

    def account(self, addr: bytes) -> dict[str, Any]:
        """An account as of the last accepted transaction (the open block included)."""
        with self._lock:
            a = self._open.get_account(addr)
            now = max(int(self.clock()), self.store.head()[2])
            epoch = epoch_of(self.params, self.genesis.time, now)
            chans = []
            for cid, _ in self.store.channels_of(addr):
                ch = self._open.get_channel(cid)
                if ch is not None:
                    chans.append({"id": cid, "channel": ch.to_wire()})
            for cid, ch in self._open.channels.items():
                if ch is not None and addr in (ch.payer, ch.payee) and all(c["id"] != cid for c in chans):
                    chans.append({"id": cid, "channel": ch.to_wire()})
            return {
                "address": addr,
                "exists": a is not None,
                "balance": a.balance if a else 0,
                "nonce": a.nonce if a else 0,
                "epoch": epoch,
                "epoch_ends": self.genesis.time + (epoch + 1) * self.params.epoch_seconds,
                "allowance_left": allowance_left(self.params, a, epoch),
                "channels": chans,
            }

    def lease(self, lid: bytes) -> dict[str, Any] | None:
        with self._lock:
            le = self._open.get_lease(lid)
            return None if le is None else {"id": lid, "lease": le.to_wire()}

    def leases_of(self, addr: bytes) -> list[bytes]:
        """Leases ``addr`` pays for or is paid by (committed, plus any the open block created)."""
        with self._lock:
            ids = [lid for lid in self.store.leases_of(addr) if self._open.get_lease(lid) is not None]
            ids += [lid for lid, le in self._open.leases.items()
                    if le is not None and addr in (le.payer, le.payee) and lid not in ids]  # fmt: skip
            return ids

    def channel(self, cid: bytes) -> dict[str, Any] | None:
        with self._lock:
            ch = self._open.get_channel(cid)
            return None if ch is None else {"id": cid, "channel": ch.to_wire()}

    def tx_status(self, txid: bytes) -> dict[str, Any]:
        with self._lock:
            i = self._ids.get(txid)
            if i is not None:
                return {"status": "pending", "tx": self._txs[i].raw}
            loc = self.store.tx_location(txid)
        if loc is None:
            return {"status": "unknown"}
        blk = self.store_block(loc[0])
        assert blk is not None
        return {"status": "committed", "height": loc[0], "index": loc[1], "tx": decode_body(blk[1])[loc[1]]}

    def store_block(self, height: int) -> tuple[bytes, bytes] | None:
        with self._lock:
            return self.store.block(height)

    def headers(self, start: int, limit: int) -> list[bytes]:
        with self._lock:
            return self.store.headers(start, limit)

    def history(self, addr: bytes, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            locs = self.store.history(addr, limit)
            out: list[dict[str, Any]] = []
            cache: dict[int, list[bytes]] = {}
            for h, i in locs:
                if h not in cache:
                    blk = self.store.block(h)
                    assert blk is not None
                    cache[h] = decode_body(blk[1])
                out.append({"height": h, "index": i, "tx": cache[h][i]})
            pending = [{"height": None, "index": None, "tx": t.raw} for t in self._txs if addr in (t.sender, *t.recipients())]
        return pending[::-1] + out
