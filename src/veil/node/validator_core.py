"""The replicated ledger machine: applies committed log entries to this validator's SQLite
store, deterministically, and answers queries. No networking: ``validator_raft.py`` feeds it
the entries the Raft engine committed, in log order, on every validator alike.

Two kinds of log entry (canonical CBOR maps):

* ``{"k": "txs", "t": unix seconds, "txs": [tx bytes, ...]}``: a batch. Block time =
  ``max(t, time of the last block)``; each transaction is checked and applied in order against
  that time (a transaction already in a block, or earlier in the batch, is acknowledged again
  and not applied twice; a rejected one is skipped with its verdict). If anything was applied,
  the batch becomes the next block, committed in one SQLite transaction together with the
  entry's log index. The verdicts are the same on every validator, because the time is part
  of the entry: what was acknowledged is never re-judged at another time (issue 18 item 6).
* ``{"k": "sigs", "s": [[height, key, signature], ...]}``: validators' signatures over blocks
  they applied; a signature is kept if it verifies and its key belongs to the set that must
  sign that block. A block with signatures from a majority of that set is final.

Entries at or below the store's ``applied`` index are skipped, so replaying the Raft journal
after a restart is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from veil.crypto.sigbatch import verify_many
from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, LedgerError, UsageError
from veil.format import cbor
from veil.ledger.address import address_of
from veil.ledger.block import BlockHeader, decode_body, decode_header, encode_body, make_header
from veil.ledger.names import NameRec
from veil.ledger.names_index import NameIndex
from veil.ledger.names_proof import ROOT_NAME, build_answer, lookup_names, names_root
from veil.ledger.rules import apply_tx
from veil.ledger.state import BlockEnv, Overlay, allowance_left, epoch_of, next_state_hash
from veil.ledger.store import LedgerStore
from veil.ledger.tx import Tx, decode_tx

log = logging.getLogger("veil.validator")

MAX_BATCH = 10_000
MAX_ENTRY = 64 << 20
VERDICT_MEMORY = 4096  # log entries whose verdicts are kept for the submitters waiting on them


@dataclass(frozen=True)
class Verdict:
    txid: bytes | None
    error: LedgerError | None = None
    height: int | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error.code, "message": str(self.error)}
        return {"id": self.txid, "height": self.height}


def txs_entry(t: int, raws: Sequence[bytes]) -> bytes:
    return cbor.encode({"k": "txs", "t": t, "txs": list(raws)})


def sigs_entry(items: Sequence[tuple[int, bytes, bytes]]) -> bytes:
    return cbor.encode({"k": "sigs", "s": [[h, p, s] for h, p, s in items]})


def _parties(tx: Tx, payer: bytes, payee: bytes) -> tuple[bytes, ...]:
    """Who a channel transaction concerns, for history: payer, payee and, for a settle, the
    uploaders its cheque rewards (so `veil account` can show what an uploader earned)."""
    ups = tuple(a for a, _ in tx.cheque.uploaders if a not in (payer, payee)) if tx.cheque is not None else ()
    return (payer, payee, *ups)


class LedgerMachine:
    """The deterministic state machine every validator runs over its own store."""

    def __init__(self, store: LedgerStore, key: SigningKey, clock: Callable[[], float] = time.time) -> None:
        g = store.genesis()
        if g is None:
            raise UsageError("the validator store has no genesis")
        self.store = store
        self.genesis = g
        self.params = g.params
        self.key = key
        self.clock = clock
        self.lock = threading.RLock()
        self.verified: OrderedDict[bytes, None] = OrderedDict()  # txids whose signature this node checked
        self.verdicts: OrderedDict[int, list[Verdict]] = OrderedDict()
        self.on_block: Callable[[BlockHeader], None] | None = None  # set by the cluster: sign it
        self.names = NameIndex((n, NameRec.decode(d)) for n, d in store.all_names())
        self._final_cache: tuple[int, tuple[bytes, bytes, bytes] | None] | None = None

    # -- applying the log ------------------------------------------------------------------

    def applied(self) -> int:
        with self.lock:
            return self.store.applied()

    def apply(self, index: int, payload: bytes) -> None:
        """Apply log entry ``index`` (entries must come in log order)."""
        with self.lock:
            if index <= self.store.applied():
                return
            try:
                m = cbor.decode(payload, MAX_ENTRY)
                kind = m.get("k") if isinstance(m, dict) else None
            except IntegrityError:
                kind = None
            if kind == "txs" and isinstance(m.get("t"), int) and isinstance(m.get("txs"), list):
                self._apply_txs(index, int(m["t"]), [r for r in m["txs"] if isinstance(r, bytes)])
            elif kind == "sigs" and isinstance(m.get("s"), list):
                self._apply_sigs(index, m["s"])
            else:  # cannot happen for entries this code wrote; skipped the same way everywhere
                log.error("log entry %d is not a ledger entry; skipped", index)

    def _apply_txs(self, index: int, t: int, raws: list[bytes]) -> None:
        height, head_hash, head_time, state_hash = self.store.head()
        env = BlockEnv(self.params, self.genesis.time, max(t, head_time), head_hash)
        verdicts: list[Verdict] = []
        decoded: list[tuple[int, Tx]] = []
        for raw in raws[:MAX_BATCH]:
            try:
                decoded.append((len(verdicts), decode_tx(raw)))
                verdicts.append(Verdict(None))
            except LedgerError as e:
                verdicts.append(Verdict(None, e))
        need = [t for _, t in decoded if t.txid not in self.verified]
        ok = dict(zip((t.txid for t in need), verify_many([t.signature_item() for t in need]), strict=True))
        ov = Overlay(self.store)
        vset_before = self.store.get_validators()
        accepted: list[Tx] = []
        seen: set[bytes] = set()
        for i, tx in decoded:
            if not ok.get(tx.txid, True):
                verdicts[i] = Verdict(tx.txid, LedgerError("transaction signature does not verify", "bad_signature"))
                continue
            if tx.txid in seen or (loc := self.store.tx_location(tx.txid)) is not None:
                at = height + 1 if tx.txid in seen else loc[0]  # type: ignore[index]
                verdicts[i] = Verdict(tx.txid, None, at)  # already in: acknowledging again is harmless
                continue
            ch = ov.get_channel(tx.channel) if tx.channel else None
            child = Overlay(ov)
            try:
                apply_tx(child, tx, env)
            except LedgerError as e:
                verdicts[i] = Verdict(tx.txid, e)
                continue
            ov.merge(child)
            if ch is not None:
                tx.parties = _parties(tx, ch.payer, ch.payee)
            accepted.append(tx)
            seen.add(tx.txid)
            verdicts[i] = Verdict(tx.txid, None, height + 1)
        for txid in seen:
            self.verified.pop(txid, None)
        header = None
        if accepted:
            tree = self.names.preview(ov)
            header = make_header(self.params.chain_id, height + 1, head_hash, env.time, [t.txid for t in accepted],
                                 next_state_hash(state_hash, ov), vset_before.hash, {ROOT_NAME: tree.root})  # fmt: skip
            undo = {n: None if (r := self.store.get_name(n)) is None else r.encode() for n in ov.names}
            self.store.commit_block(header, encode_body([t.raw for t in accepted]), accepted, ov, index)
            self.names.advance(tree, undo)
        self._remember(index, verdicts)
        if header is not None and self.on_block is not None:
            self.on_block(header)

    def _apply_sigs(self, index: int, items: list[Any]) -> None:
        good: list[tuple[int, bytes, bytes]] = []
        for it in items[:4096]:
            if not (isinstance(it, list) and len(it) == 3 and isinstance(it[0], int) and isinstance(it[1], bytes)
                    and isinstance(it[2], bytes)):  # fmt: skip
                continue
            raw = self.store.header(it[0])
            if raw is None:
                continue
            h = decode_header(raw)
            vset = self.store.vset_by_hash(h.vset)
            if vset is not None and it[1] in vset.keys and h.signed_by(it[1], it[2]):
                good.append((it[0], it[1], it[2]))
        self.store.add_sigs(good, index)

    def _remember(self, index: int, verdicts: list[Verdict]) -> None:
        self.verdicts[index] = verdicts
        while len(self.verdicts) > VERDICT_MEMORY:
            self.verdicts.popitem(last=False)

    def take_verdicts(self, index: int) -> list[Verdict] | None:
        with self.lock:
            return self.verdicts.pop(index, None)

    def mark_verified(self, txids: Sequence[bytes]) -> None:
        """Signatures this node checked at admission: not checked again when the entry applies."""
        with self.lock:
            for t in txids:
                self.verified[t] = None
            while len(self.verified) > 200_000:
                self.verified.popitem(last=False)

    # -- queries ---------------------------------------------------------------------------

    def final_height(self, upto: int | None = None) -> int:
        """The highest height up to which every block carries a majority certificate."""
        with self.lock:
            height = self.store.head()[0] if upto is None else upto
            start = max(1, height - 256)
            counts = self.store.sig_counts(start)
            final = start - 1
            for h in range(start, height + 1):
                raw = self.store.header(h)
                if raw is None:
                    break
                vset = self.store.vset_by_hash(decode_header(raw).vset)
                if vset is None or counts.get(h, 0) < vset.quorum:
                    break
                final = h
            return final

    def info(self) -> dict[str, Any]:
        with self.lock:
            height, head_hash, head_time, state_hash = self.store.head()
            supply = self.store.get_supply()
            vset = self.store.get_validators()
            return {
                "chain": self.params.chain_id,
                "name": self.genesis.name,
                "genesis_hash": self.genesis.hash,
                "genesis_time": self.genesis.time,
                "validators": [[m.pub, m.raft, m.api] for m in vset.members],
                "vset_version": vset.version,
                "height": height,
                "final": self.final_height(height),
                "head_hash": head_hash,
                "head_time": head_time,
                "state_hash": state_hash,
                "applied": self.store.applied(),
                "minted": supply.minted,
                "pool": supply.pool,
                "bonded": supply.bonded,
                "burned": supply.burned,
                "params": self.params.to_wire(),
                "now": int(self.clock()),
            }

    def account(self, addr: bytes) -> dict[str, Any]:
        with self.lock:
            a = self.store.get_account(addr)
            now = max(int(self.clock()), self.store.head()[2])
            epoch = epoch_of(self.params, self.genesis.time, now)
            chans = [{"id": cid, "channel": ch.to_wire()} for cid, ch in self.store.channels_of(addr)]
            stake = a.stake if a else 0
            return {
                "address": addr,
                "exists": a is not None,
                "balance": a.balance if a else 0,
                "nonce": a.nonce if a else 0,
                "stake": stake,
                "unbonding": a.unbonding if a else 0,
                "unbond_at": a.unbond_at if a else 0,
                "epoch": epoch,
                "epoch_ends": self.genesis.time + (epoch + 1) * self.params.epoch_seconds,
                "allowance": self.params.allowance_for(stake),
                "allowance_left": allowance_left(self.params, a, epoch),
                "storage_quota": self.params.storage_quota_for(stake),
                "free_opens_left": max(0, self.params.free_opens_per_epoch - (a.free_opens if a and a.epoch == epoch else 0)),
                "channels": chans,
                "nodes": [{"node": n, "reg": r.to_wire()} for n, r in self.store.nodes_of(addr)],
            }

    def node(self, addr: bytes) -> dict[str, Any] | None:
        with self.lock:
            reg = self.store.get_node(addr)
            return None if reg is None else {"node": addr, "reg": reg.to_wire()}

    def lease(self, lid: bytes) -> dict[str, Any] | None:
        with self.lock:
            le = self.store.get_lease(lid)
            return None if le is None else {"id": lid, "lease": le.to_wire()}

    def leases_of(self, addr: bytes) -> list[bytes]:
        with self.lock:
            return self.store.leases_of(addr)

    def channel(self, cid: bytes) -> dict[str, Any] | None:
        with self.lock:
            ch = self.store.get_channel(cid)
            return None if ch is None else {"id": cid, "channel": ch.to_wire()}

    def tx_status(self, txid: bytes) -> dict[str, Any]:
        with self.lock:
            loc = self.store.tx_location(txid)
            if loc is None:
                return {"status": "unknown"}
            blk = self.store.block(loc[0])
        assert blk is not None
        return {"status": "committed", "height": loc[0], "index": loc[1], "tx": decode_body(blk[1])[loc[1]]}

    def block(self, height: int) -> dict[str, Any] | None:
        with self.lock:
            blk = self.store.block(height)
            if blk is None:
                return None
            sigs = self.store.sigs(height)
        return {"header": blk[0], "body": blk[1], "sigs": cbor.encode([[k, v] for k, v in sorted(sigs.items())])}

    def headers(self, start: int, limit: int) -> list[bytes]:
        with self.lock:
            return self.store.headers(start, limit)

    def history(self, addr: bytes, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            locs = self.store.history(addr, limit)
            out: list[dict[str, Any]] = []
            cache: dict[int, list[bytes]] = {}
            for h, i in locs:
                if h not in cache:
                    blk = self.store.block(h)
                    assert blk is not None
                    cache[h] = decode_body(blk[1])
                out.append({"height": h, "index": i, "tx": cache[h][i]})
        return out

    def _final_block(self) -> tuple[bytes, bytes, bytes] | None:
        """(header, certificate, names root) of the newest final block, cached until the next log
        entry applies (finding the final height reads up to 256 headers)."""
        applied = self.store.applied()
        if self._final_cache is not None and self._final_cache[0] == applied:
            return self._final_cache[1]
        final = self.final_height()
        raw = self.store.header(final) if final > 0 else None
        got = None
        if raw is not None:
            sigs = cbor.encode([[k, v] for k, v in sorted(self.store.sigs(final).items())])
            got = (raw, sigs, names_root(decode_header(raw)) or b"")
        self._final_cache = (applied, got)
        return got

    def name_answer(self, name: str) -> dict[str, Any] | None:
        """``name``'s record(s) with proofs against the newest final block (names_proof.py); None
        while that block's names tree is not at hand (a restart before the next final block)."""
        with self.lock:
            fb = self._final_block()
            if fb is None:
                return None
            raw, sigs, root = fb
            tree = self.names.at(root)
            if tree is None:
                return None
            recs = []
            for n in lookup_names(name):  # as of the final block, which the head may have moved past
                now = self.store.get_name(n)
                recs.append(self.names.record_at(root, n, None if now is None else now.encode()))
        return build_answer(name, raw, sigs, tree, recs)

    def names_of(self, owner: bytes) -> list[tuple[str, NameRec]]:
        with self.lock:
            return self.store.names_of(owner)

    @property
    def address(self) -> bytes:
        return address_of(self.key.public_key)
