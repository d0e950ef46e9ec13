"""The validator cluster: PySyncObj (Raft) replicates the ledger's log; every validator applies
the committed entries to its own store (validator_core.LedgerMachine), signs the blocks they
make, and replicates its signatures through the same log.

* Submitting: any validator takes transactions, checks their encoding and signatures, batches
  what arrives within ``BATCH_WINDOW`` into one log entry (with its own clock's time) and
  hands it to Raft; a follower's entry is forwarded to the leader by PySyncObj. The submit
  returns when the entry is committed by a majority and applied here: acknowledged = final.
* A majority down: writes fail at once with "ledger unavailable: R of N validators reachable,
  M needed"; reads still answer from this store, marked possibly stale.
* Membership follows the ledger: when a block changes the validator set, the leader adds or
  removes the Raft members (one at a time, as PySyncObj requires).
* Raft traffic is authenticated and encrypted with the cluster secret (PySyncObj's
  ``password``: Fernet, i.e. AES-CBC + HMAC-SHA256, with per-connection random keys against
  replay); without it a peer's messages are dropped before they are unpickled.
* Durability: PySyncObj's file journal (``ledger/raft.journal``) is written through mmap before
  an entry is acknowledged to the leader, so it survives kill -9 of any or all members; log
  compaction is off (the journal holds the whole log; a restart replays it and the machine
  skips entries at or below its ``applied`` index).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

from veil.crypto.sigbatch import verify_many
from veil.errors import LedgerError, UnavailableError
from veil.ledger.block import BlockHeader, decode_header
from veil.ledger.tx import Tx, decode_tx
from veil.node.validator_core import MAX_BATCH, LedgerMachine, Verdict, sigs_entry, txs_entry

log = logging.getLogger("veil.validator")

BATCH_WINDOW = 0.005
MAX_ENTRY_TXS = 20_000
MAX_ENTRY_BYTES = 16 << 20  # a batch this big goes out on its own (lease answers are up to ~1 MiB each)
SUBMIT_TIMEOUT = 15.0
SIG_FLUSH = 0.05
RESIGN_EVERY = 1.0
QUORUM_WAIT = 2.0


class _Raft(SyncObj):  # type: ignore[misc]
    """The replicated object: one method, whose calls are the log's entries."""

    def __init__(self, self_addr: str, others: Sequence[str], conf: SyncObjConf, sink: Callable[[int, bytes], None]) -> None:
        self._sink = sink
        super().__init__(self_addr, list(others), conf)

    @replicated  # type: ignore[untyped-decorator]
    def entry(self, payload: bytes) -> int:
        index = int(self.raftLastApplied) + 1  # the index of the entry being applied
        self._sink(index, payload)
        return index


@dataclass
class _Batch:
    raws: list[bytes] = field(default_factory=list)
    nbytes: int = 0
    index: int | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def unavailable_line(reachable: int, members: int) -> str:
    need = members // 2 + 1
    return f"ledger unavailable: {reachable} of {members} validators reachable, {need} needed"


class Cluster:
    def __init__(self, machine: LedgerMachine, self_raft: str, peers: Sequence[str], ledger_dir: Path, secret: bytes,
                 election: tuple[float, float] = (0.5, 1.0)) -> None:  # fmt: skip
        self.machine = machine
        self.self_raft = self_raft
        self._applyq: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._applied = threading.Condition()
        self._applied_idx = machine.applied()
        self._pending: _Batch | None = None
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sigq: list[tuple[int, bytes, bytes]] = []
        self._signed: dict[int, float] = {}  # height -> when this node last sent its signature
        self._membership_busy = False
        machine.on_block = self._on_block
        conf = SyncObjConf(
            password=secret.hex(),
            journalFile=str(ledger_dir / "raft.journal"),
            dynamicMembershipChange=True,
            appendEntriesPeriod=0.05,
            appendEntriesUseBatch=False,  # send each entry at once: p99 97 -> 72 ms (ledger.md, "Cluster speed")
            raftMinTimeout=election[0],
            raftMaxTimeout=election[1],
            connectionTimeout=3.5,
            connectionRetryTime=0.5,
            leaderFallbackTimeout=2.0,
            appendEntriesBatchSizeBytes=8 << 20,
            logCompactionMinEntries=2**62,
            logCompactionMinTime=2**40,
            useFork=False,
            commandsWaitLeader=True,
            autoTickPeriod=0.01,
        )
        self._applier = threading.Thread(target=self._apply_loop, name="ledger-apply", daemon=True)
        self._applier.start()
        self.raft = _Raft(self_raft, [p for p in peers if p != self_raft], conf, self._enqueue)
        self._batcher = threading.Thread(target=self._batch_loop, name="ledger-batcher", daemon=True)
        self._batcher.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._batcher.join(timeout=5)
        self.raft.destroy_synchronous()
        self._applyq.put(None)
        self._applier.join(timeout=10)

    # -- applying (on every member) ----------------------------------------------------------

    def _enqueue(self, index: int, payload: bytes) -> None:
        self._applyq.put((index, payload))

    def _apply_loop(self) -> None:
        while True:
            item = self._applyq.get()
            if item is None:
                return
            index, payload = item
            try:
                self.machine.apply(index, payload)
            except Exception:  # a failing disk must not silently skip an entry: stop applying
                log.exception("applying log entry %d failed; this validator stops applying", index)
                return
            with self._applied:
                self._applied_idx = max(self._applied_idx, index)
                self._applied.notify_all()

    def wait_applied(self, index: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._applied:
            while self._applied_idx < index:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(left)
        return True

    def _on_block(self, header: BlockHeader) -> None:
        """Called by the machine for each block it makes: sign it if this node must."""
        vset = self.machine.store.vset_by_hash(header.vset)
        key = self.machine.key
        if vset is not None and key.public_key in vset.keys:
            self._signed[header.height] = time.monotonic()
            if len(self._signed) > 10_000:
                for h in sorted(self._signed)[:5000]:
                    del self._signed[h]
            with self._pending_lock:
                self._sigq.append((header.height, key.public_key, header.sign(key)))

    # -- submitting ------------------------------------------------------------------------------

    def reachable(self) -> tuple[int, int]:
        """(validators this one is connected to, itself included; members)."""
        st = self.raft.getStatus()
        others = [k for k in st if str(k).startswith("partner_node_status_server_")]
        up = sum(1 for k in others if st[k] == 2)
        return 1 + up, 1 + len(others)

    def check_quorum(self, wait: float = QUORUM_WAIT) -> None:
        """UnavailableError with the one clear line unless a majority is connected (waits a moment:
        connections to restarted members are re-made every half second)."""
        deadline = time.monotonic() + wait
        while True:
            up, n = self.reachable()
            if up * 2 > n:
                return
            if time.monotonic() > deadline:
                raise UnavailableError(unavailable_line(up, n))
            time.sleep(0.05)

    def submit(self, raws: Sequence[bytes]) -> list[Verdict]:
        """Check, replicate and apply a batch; one verdict per transaction, in order."""
        if len(raws) > MAX_BATCH:
            raise LedgerError(f"at most {MAX_BATCH} transactions per batch", "oversized")
        out: list[Verdict | None] = [None] * len(raws)
        decoded: list[tuple[int, Tx]] = []
        for i, raw in enumerate(raws):
            try:
                decoded.append((i, decode_tx(raw)))
            except LedgerError as e:
                out[i] = Verdict(None, e)
        ok = verify_many([t.signature_item() for _, t in decoded])
        good: list[tuple[int, Tx]] = []
        for (i, t), v in zip(decoded, ok, strict=True):
            if v:
                good.append((i, t))
            else:
                out[i] = Verdict(t.txid, LedgerError("transaction signature does not verify", "bad_signature"))
        if good:
            self.check_quorum()
            self.machine.mark_verified([t.txid for _, t in good])
            with self._pending_lock:
                size = sum(len(t.raw) for _, t in good)
                if (self._pending is None or len(self._pending.raws) + len(good) > MAX_ENTRY_TXS
                        or self._pending.nbytes + size > MAX_ENTRY_BYTES):  # fmt: skip
                    self._flush_locked()
                    self._pending = _Batch()
                batch = self._pending
                base = len(batch.raws)
                batch.raws.extend(t.raw for _, t in good)
                batch.nbytes += size
            self._wake.set()
            if not batch.done.wait(SUBMIT_TIMEOUT) or batch.error is not None or batch.index is None:
                up, n = self.reachable()
                why = batch.error or "not committed in time"
                raise UnavailableError(unavailable_line(up, n) if up * 2 <= n else f"ledger unavailable: {why}")
            if not self.wait_applied(batch.index, SUBMIT_TIMEOUT):
                raise UnavailableError("ledger unavailable: committed but not yet applied here; ask again")
            verdicts = self.machine.verdicts.get(batch.index)
            if verdicts is None:
                raise UnavailableError("ledger unavailable: the verdicts of this batch were forgotten; ask again")
            for j, (i, _) in enumerate(good):
                out[i] = verdicts[base + j]
        return [v if v is not None else Verdict(None, LedgerError("not processed", "internal")) for v in out]

    def _flush_locked(self) -> None:
        batch, self._pending = self._pending, None
        if batch is None or not batch.raws:
            return
        payload = txs_entry(int(self.machine.clock()), batch.raws)

        def done(res: Any, err: Any) -> None:
            if err == FAIL_REASON.SUCCESS and isinstance(res, int):
                batch.index = res
            else:
                batch.error = f"the cluster did not commit the batch (reason {err})"
            batch.done.set()

        self.raft.entry(payload, callback=done)

    def _batch_loop(self) -> None:
        last_resign = 0.0
        last_sigs = 0.0
        while not self._stop.is_set():
            self._wake.wait(SIG_FLUSH)
            self._wake.clear()
            time.sleep(BATCH_WINDOW)  # let concurrent submits join the entry
            try:
                with self._pending_lock:
                    self._flush_locked()
                    now = time.monotonic()
                    if self._sigq and now - last_sigs >= SIG_FLUSH:
                        sigs, self._sigq = self._sigq, []
                        last_sigs = now
                        self.raft.entry(sigs_entry(sigs))
                if time.monotonic() - last_resign > RESIGN_EVERY:
                    last_resign = time.monotonic()
                    self._resign()
                    self._reconcile_membership()
            except Exception:
                log.exception("batcher round failed; will retry")

    def _resign(self) -> None:
        """Sign again recent blocks that still lack this node's signature: made before a crash, or
        the signature entry was lost with a leader that died before replicating it."""
        m = self.machine
        key = m.key.public_key
        with m.lock:
            head = m.store.head()[0]
            final = m.final_height(head)
            todo = []
            for h in range(max(1, final + 1), head + 1):
                if time.monotonic() - self._signed.get(h, 0.0) < 2 * RESIGN_EVERY or key in m.store.sigs(h):
                    continue
                raw = m.store.header(h)
                if raw is not None:
                    todo.append(raw)
        for raw in todo:
            self._on_block(decode_header(raw))

    # -- membership follows the ledger's validator set -----------------------------------------

    def _reconcile_membership(self) -> None:
        if self._membership_busy or not self.raft._isLeader():
            return
        want = {m.raft for m in self.machine.store.get_validators().members} - {self.self_raft}
        have = {n.id for n in self.raft.otherNodes}
        for addr in sorted(want - have)[:1] or []:
            self._change(self.raft.addNodeToCluster, addr)
            return
        for addr in sorted(have - want)[:1]:
            self._change(self.raft.removeNodeFromCluster, addr)
            return

    def _change(self, op: Callable[..., None], addr: str) -> None:
        self._membership_busy = True

        def done(res: Any, err: Any) -> None:
            self._membership_busy = False
            log.info("raft membership change %s %s: %s", op.__name__, addr, "ok" if err == FAIL_REASON.SUCCESS else err)

        log.info("raft membership: %s %s", op.__name__, addr)
        op(addr, callback=done)

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        st = self.raft.getStatus()
        leader = st.get("leader")
        up, n = self.reachable()
        return {
            "raft": self.self_raft,
            "role": {0: "follower", 1: "candidate", 2: "leader"}.get(int(st.get("state", 0)), "?"),
            "leader": getattr(leader, "id", None),
            "term": int(st.get("raft_term", 0)),
            "commit_index": int(st.get("commit_idx", 0)),
            "applied_index": self._applied_idx,
            "reachable": up,
            "members": n,
            "quorum": up * 2 > n and leader is not None,
        }
