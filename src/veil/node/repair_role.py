"""The ``repairer`` role: keeps the files this node stores shares of at full health, at a cost
that does not grow with how many it stores (docs/specs/repair.md, "Automatic repair").

A node holds each such file's manifest, and a manifest plus its storage index is all a verify
cap contains, so it needs no registration and never sees a key. Each file has one repair
*leader*: the first node, in leader order for its storage index (families ranked first, then
placement: protocol/family.py), among the nodes that claim a share, answer, and run this role. Only the leader locates, checks and repairs the file.

What this node does, from one thread, as repair_schedule.RepairSchedule says:
- a file it has not placed yet (``new``): *elect* — ask the candidates ahead of this node in
  placement order (its routing table's view, no lookup) whether they hold a share, one at a
  time, until one does (usually the first: one small request). If none does, this node leads;
- a file it leads: check it (locate + sampled blocks) and repair it below the threshold; the
  claims it sees may name a node ahead of it, which then leads;
- a file another node leads (sweep): ask that node whether it still holds a share (one small
  request); if not, or it does not answer, elect again;
- a peer that departs — evicted from the DHT routing table, or failing the liveness probe
  this node sends every ``repair_interval`` to the peers its files depend on (O(peers), not
  O(files)), or failing a request — makes every file it led or held due at once.

Config keys (from `veil node run`): ``repair_interval`` (seconds, default 3600: a file's sweep
visits are at least this far apart; also the period of the store scan and the liveness probe),
``repair_sweep_rate`` (sweep visits per minute, default 30), ``repair_threshold`` (``happy``
(default), ``n``, or a share count), ``repair_wallet`` (a wallet that pays charging nodes for the
blocks checked and fetched and signs the storage tickets of the shares it places; passphrase from
VEIL_PASSPHRASE) and ``repair_max_spend`` (most VEIL it spends while the node runs; default
[payments] max_spend). Without a wallet, a node that knows a ledger (``validator``) pays and signs
with its own account; one that does not, or given ``--repair-wallet none``, works against free
nodes only (and signs tickets with the node's key).

Imports from: veil.errors, veil.format, veil.protocol, veil.client, veil.node.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.client.check import check
from veil.client.config import payment_setting
from veil.client.ledger_client import LedgerClient
from veil.client.network import Network, NodeInfo, node_from_address
from veil.client.payer import Payer
from veil.client.repair import repair
from veil.client.tickets import Tickets
from veil.client.wallet import Wallet, open_wallet
from veil.crypto.idpuzzle import valid_id
from veil.errors import UsageError, VeilError
from veil.format.caps import SI_SIZE, VerifyCap
from veil.format.manifest import manifest_hash, parse_manifest
from veil.ledger.amount import parse_amount
from veil.net.server import Router
from veil.node.context import NodeContext
from veil.node.netview import node_network
from veil.node.repair_escrow import EscrowRepairs
from veil.node.repair_limits import parse_threshold, threshold_for
from veil.node.repair_schedule import NEW, RepairSchedule, Visit
from veil.protocol.family import leader_order
from veil.protocol.placement import dht_key, permuted
from veil.storage.store import ShareStore

log = logging.getLogger("veil.repairer")

DEFAULT_INTERVAL = 3600.0
DEFAULT_SWEEP_RATE = 30.0
CANDIDATES = 20  # as many as a DHT lookup returns (k)
PROBE_TIMEOUT = 5.0
RETRY_AFTER_ERROR = 60.0


def split_key(key: bytes) -> tuple[bytes, bytes]:
    """A schedule key (storage index + manifest hash: a slot, which is one file) split in two."""
    return key[:SI_SIZE], key[SI_SIZE:]


def leader(si: bytes, holders: list[NodeInfo]) -> NodeInfo | None:
    """The first claimed holder in leader order (the leader, if it answers and repairs):
    families ranked first, then placement (protocol/family.py, ``leader_order``)."""
    return leader_order(si, holders)[0] if holders else None


@dataclass
class RepairStats:
    checked: int = 0
    elections: int = 0
    repaired_files: int = 0
    repaired_shares: int = 0
    probes: int = 0
    last_error: str = ""


class RepairerRole:
    name = "repairer"

    def __init__(self) -> None:
        self.ctx: NodeContext | None = None
        self.interval = DEFAULT_INTERVAL
        self.sweep_rate = DEFAULT_SWEEP_RATE
        self.threshold: str | int = "happy"
        self.stats = RepairStats()
        self.schedule: RepairSchedule | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._departures: deque[bytes] = deque(maxlen=4096)  # from DHT threads to the loop
        self._thread: threading.Thread | None = None
        self._net: Network | None = None
        self._peers: dict[bytes, NodeInfo] = {}  # how to reach the nodes named in the schedule
        self._repairs: dict[bytes, tuple[bool, float]] = {}  # node id -> (runs this role, when learnt)
        self._wallet: Wallet | None = None
        self._max_spend = 0
        self._payer: Payer | None = None
        self.escrow: EscrowRepairs | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        self.ctx = ctx
        self.interval = float(ctx.config.repair_interval or DEFAULT_INTERVAL)
        self.sweep_rate = float(ctx.config.repair_sweep_rate or DEFAULT_SWEEP_RATE)
        self.threshold = parse_threshold(ctx.config.repair_threshold or "happy")
        wallet, limit = ctx.config.repair_wallet, ctx.config.repair_max_spend
        if wallet is not None and str(wallet) == "none":  # never pays: heals on free nodes only
            if limit:
                raise UsageError("--repair-max-spend needs a wallet (not --repair-wallet none)")
        elif wallet:
            secret = os.environ.get("VEIL_PASSPHRASE")
            if secret is None:
                raise UsageError("--repair-wallet needs the wallet's passphrase in VEIL_PASSPHRASE")
            self._wallet = open_wallet(Path(str(wallet)), secret)  # now: a wrong passphrase stops the node at start
        elif ctx.config.validator:
            # A node that knows a ledger pays from its own account (what it earns): a charging
            # network then heals without an extra wallet. Channels: DATA/repairer.channels.
            self._wallet = Wallet(ctx.data_dir / "repairer", ctx.key)
        elif limit:
            raise UsageError("--repair-max-spend needs --repair-wallet (or --validator: the node's own account pays)")
        if self._wallet is not None:
            self._max_spend = parse_amount(str(limit)) if limit else payment_setting("max_spend")

    def _payer_for(self, net: Network) -> Payer | None:
        """The repairer's payer (one per run, so --repair-max-spend bounds the whole run)."""
        if self._wallet is None:
            return None
        if self._payer is None:
            endpoint = self.ctx.config.validator if self.ctx is not None else None
            ledger = LedgerClient.from_endpoint(str(endpoint)) if endpoint else LedgerClient.from_network(net)
            if ledger is None:
                return None
            w = self._wallet
            self._payer = Payer(lambda: w, ledger, max_spend=self._max_spend,
                                deposit=max(1, min(self._max_spend, payment_setting("deposit"))))  # fmt: skip
        return self._payer

    def _escrow_of(self, payer: Payer | None) -> EscrowRepairs | None:
        if self.escrow is None and payer is not None and self._wallet is not None:
            self.escrow = EscrowRepairs(self._network(), payer.ledger, self._wallet)
        return self.escrow

    def _settle(self) -> None:
        """Lease escrows owed to this repairer whose challenge ran out: move them (repair_escrow)."""
        if self.escrow is not None and self.escrow.owed:
            try:
                self.escrow.settle()
            except VeilError as e:
                self.stats.last_error = f"lease escrow: {e}"

    @property
    def spent(self) -> int:
        return self._payer.spent if self._payer is not None else 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="repairer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._net is not None:
            self._net.close()
        if self._payer is not None:
            self._payer.close()
            self._payer.ledger.close()

    def status(self) -> dict[str, Any]:
        s, sch = self.stats, self.schedule
        out: dict[str, Any] = {
            "interval_ms": int(self.interval * 1000), "sweep_rate_per_min": f"{self.sweep_rate:g}",
            "threshold": str(self.threshold), "checked": s.checked, "elections": s.elections,
            "repaired_files": s.repaired_files, "repaired_shares": s.repaired_shares, "probes": s.probes,
            "last_error": s.last_error[:200], "spent": self.spent,
        }
        if self.escrow is not None:
            e = self.escrow.stats
            out["escrow"] = {"owed": len(self.escrow.owed), "challenged": e.challenged, "moved": e.moved,
                             "failed": e.failed, "answered": e.answered, "repaid": e.repaid}  # fmt: skip
        if sch is not None:
            out |= {"files": len(sch.files), "leading": sch.leading, "queue": sch.queued(time.monotonic()),
                    "sweep_visits": sch.stats.sweep_visits,
                    "triggered_visits": sch.stats.triggered_visits, "departures": sch.stats.departures}
        return out

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        dht = ctx.services.dht
        while dht is not None and not dht.joined.is_set():  # nothing before the DHT has joined
            if self._stop.wait(0.5):
                return
        if dht is not None:
            dht.on_departure(self._on_departure)
        self.schedule = RepairSchedule(ctx.node_id, self.interval, self.sweep_rate, time.monotonic(),
                                       departed_ttl=max(600.0, 3 * self.interval))
        next_scan = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_scan:
                    self._scan(now)
                    next_scan = time.monotonic() + self.interval
                self._take_departures()
                self._settle()
                draining = ctx.services.draining
                if draining is not None and draining():  # the node is leaving: nothing to do but wait
                    self._stop.wait(1.0)
                    continue
                visit = self.schedule.next(time.monotonic())
                if visit is None:
                    now = time.monotonic()
                    hint = min(self.schedule.wait_hint(now), max(0.0, next_scan - now))
                    if self.escrow is not None and self.escrow.owed:
                        hint = min(hint, 1.0)  # a challenge window may run out: settle soon
                    self._wake.wait(hint + 0.01)
                    self._wake.clear()
                    continue
                self._visit(visit)
            except Exception as e:  # keep the loop alive; the status says what went wrong
                log.exception("repairer step failed")
                self.stats.last_error = str(e)
                self._stop.wait(1.0)

    def _on_departure(self, node_id: bytes) -> None:
        self._departures.append(node_id)
        self._wake.set()

    def _scan(self, now: float) -> None:
        """Re-read which files the store holds, and probe the peers they depend on."""
        assert self.ctx is not None and self.schedule is not None
        store = self.ctx.services.store
        if store is None:
            return
        held = [si + mhash for si in store.storage_indexes() for mhash in store.slots(si)]
        known = set(self.schedule.files)
        self.schedule.sync(held, now)
        for key in held:
            if key not in known:
                self._predict(store, key)
        peers = [self._peers[p] for p in self.schedule.peers() if p in self._peers]
        if peers:
            with ThreadPoolExecutor(max_workers=min(8, len(peers))) as ex:
                answers = list(ex.map(self._ask_roles, peers))
            for node, runs in zip(peers, answers, strict=True):
                self._learn_roles(node, runs)

    def _take_departures(self) -> None:
        """Evictions the DHT reported. A peer this node's files depend on is asked once more
        first: a DHT request that timed out on a busy machine is no reason to re-elect leaders."""
        assert self.schedule is not None
        seen: set[bytes] = set()
        peers = self.schedule.peers() if self._departures else set()
        while self._departures:
            nid = self._departures.popleft()
            if nid in seen:
                continue
            seen.add(nid)
            node = self._peers.get(nid)
            if node is None or nid not in peers:
                self.schedule.departed(nid, time.monotonic())  # no file of ours names it: a mark only
            else:
                self._learn_roles(node, self._ask_roles(node))

    def _ask_roles(self, node: NodeInfo) -> bool | None:
        """Does ``node`` run the repairer role? None if it does not answer twice. (Network only.)"""
        for _ in range(2):
            self.stats.probes += 1
            try:
                st = self._network().client(node, PROBE_TIMEOUT).call("GET", "/v1/node")
            except VeilError:
                continue
            self._learn_label(node, st)
            return isinstance(st, dict) and isinstance(st.get("roles"), dict) and "repairer" in st["roles"]
        return None

    def _learn_label(self, node: NodeInfo, st: object) -> None:
        """Keep the operator label ``node`` declares in its signed record (GET /v1/node), verified."""
        dht = self.ctx.services.dht if self.ctx is not None else None
        raw = st.get("record") if isinstance(st, dict) else None
        if dht is not None and isinstance(raw, bytes):
            try:
                dht.learn_node_record(raw, node.node_id)
            except VeilError:
                log.info("repairer: %s sent a node record that does not verify", node.label)

    def _learn_roles(self, node: NodeInfo, runs: bool | None) -> None:
        assert self.schedule is not None
        now = time.monotonic()
        if runs is None:
            self._repairs.pop(node.node_id, None)
            self.schedule.departed(node.node_id, now)
        else:
            self._repairs[node.node_id] = (runs, now)
            self.schedule.answered(node.node_id)

    def _runs_repairer(self, node: NodeInfo) -> bool | None:
        known = self._repairs.get(node.node_id)
        if known is not None and time.monotonic() - known[1] < self.interval:
            return known[0]
        runs = self._ask_roles(node)
        self._learn_roles(node, runs)
        return runs

    def _network(self) -> Network:
        if self._net is None:
            assert self.ctx is not None
            self._net = node_network(self.ctx)
            w = self._wallet
            if w is not None:  # new holders that admit by ticket: charged to the paying account
                self._net.tickets = Tickets(lambda: w.key)
        return self._net

    # -- visits -----------------------------------------------------------------------------

    def _visit(self, v: Visit) -> None:
        ctx, sch = self.ctx, self.schedule
        assert ctx is not None and sch is not None
        store = ctx.services.store
        now = time.monotonic()
        si, mhash = split_key(v.key)
        shnums, mbytes = store.list_shares(si, mhash) if store is not None else ([], None)
        if mbytes is None or not shnums:
            sch.learnt(v.key, None, None, now)  # nothing to look after (yet): look again next sweep
            return
        try:
            st = v.state
            if v.reason == NEW or st.leader is None or sch.is_departed(st.leader, now):
                self._elect(v.key, mbytes)
            elif st.leader == ctx.node_id:
                self._lead(v.key, mbytes)
            elif not self._still_holds(self._peers.get(st.leader), si, mhash):
                self._elect(v.key, mbytes)
            else:
                sch.learnt(v.key, st.leader, None, time.monotonic())
        except Exception as e:  # the file must stay in the sweep whatever went wrong
            if not isinstance(e, VeilError):
                log.exception("repairer: %s", si.hex()[:16])
            self.stats.last_error = f"{si.hex()[:16]}: {e}"
            log.info("repairer: %s: %s", si.hex()[:16], e)
            sch.requeue(v, time.monotonic(), min(self.interval, RETRY_AFTER_ERROR))

    def _still_holds(self, node: NodeInfo | None, si: bytes, mhash: bytes) -> bool:
        """Does ``node`` answer and claim a share of the file? (A failure to answer is a departure.)"""
        if node is None:
            return False
        try:
            listing = self._network().transport.list_slot(node, si, mhash, PROBE_TIMEOUT)
        except VeilError:
            self._learn_roles(node, self._ask_roles(node))  # departed only if it does not answer at all
            return False
        assert self.schedule is not None
        self.schedule.answered(node.node_id)
        return len(listing.shares) > 0

    def _candidates(self, si: bytes) -> list[NodeInfo]:
        """Storage nodes for ``si`` in placement order, as this node already knows them (no lookup)."""
        ctx = self.ctx
        assert ctx is not None
        dht = ctx.services.dht
        me = self._me()
        if dht is None:
            nodes = [n for n in self._network().storage_nodes() if n.node_id != ctx.node_id] + [me]
        else:
            nodes = [node_from_address(c.address, c.node_id) for c in dht.closest_known(dht_key(si), CANDIDATES)]
            nodes = [*self._network().labelled([n for n in nodes if n.node_id != ctx.node_id]), me]
        # Ids that skip the network's puzzle are no candidates (the DHT's table holds none).
        nodes = [n for n in nodes if n is me or valid_id(n.node_id, ctx.config.id_bits)]
        return [nodes[i] for i in permuted(si, [n.node_id for n in nodes])]

    def _leader_candidates(self, si: bytes) -> list[NodeInfo]:
        """The candidates in leader order (families first: one family cannot capture the lead)."""
        return leader_order(si, self._candidates(si))

    def _me(self) -> NodeInfo:
        ctx = self.ctx
        assert ctx is not None
        return NodeInfo(ctx.host, ctx.port, ctx.node_id, operator=ctx.config.operator or "")

    def _predict(self, store: ShareStore, key: bytes) -> None:
        """A new file's leader and holders as placement predicts them, from local knowledge only:
        uploads put share i on the i-th node in placement order, so until a visit confirms it the
        first candidate is taken for the leader and the first n for the holders. That is enough
        for departures to trigger the right checks before the sweep has reached the file."""
        assert self.ctx is not None and self.schedule is not None
        si, mhash = split_key(key)
        shnums, mbytes = store.list_shares(si, mhash)
        if mbytes is None or not shnums:
            return
        try:
            n = parse_manifest(mbytes).n
        except VeilError:
            return
        placed = self._candidates(si)[:n]
        for node in placed:
            self._peers.setdefault(node.node_id, node)
        self.schedule.predicted(key, leader_order(si, placed)[0].node_id, [x.node_id for x in placed])

    def _elect(self, key: bytes, mbytes: bytes) -> None:
        """Find the leader: the first node ahead of this one that answers, repairs and holds a share."""
        ctx, sch = self.ctx, self.schedule
        assert ctx is not None and sch is not None
        si, mhash = split_key(key)
        self.stats.elections += 1
        for node in self._leader_candidates(si):
            if node.node_id == ctx.node_id:
                break
            if sch.is_departed(node.node_id, time.monotonic()) or self._runs_repairer(node) is not True:
                continue
            if self._still_holds(node, si, mhash):
                self._peers[node.node_id] = node
                sch.learnt(key, node.node_id, None, time.monotonic())
                return
        self._lead(key, mbytes)

    def _lead(self, key: bytes, mbytes: bytes) -> None:
        """Check the file (and hand it over if the claims show a leader ahead); repair if needed."""
        ctx, sch = self.ctx, self.schedule
        assert ctx is not None and sch is not None
        si, _ = split_key(key)
        net = self._network()
        man = parse_manifest(mbytes)
        vcap = VerifyCap(si, manifest_hash(mbytes))
        payer = self._payer_for(net)
        spent_before = self.spent
        rep = check(net, vcap, payer=payer)
        self.stats.checked += 1
        claimed = {s.node.node_id: s.node for s in rep.shares}
        claimed[ctx.node_id] = self._me()
        ids = list(claimed)
        for node in leader_order(si, list(claimed.values())):
            if node.node_id == ctx.node_id:
                break
            if sch.is_departed(node.node_id, time.monotonic()) or self._runs_repairer(node) is not True:
                continue
            self._peers[node.node_id] = node
            sch.learnt(key, node.node_id, None, time.monotonic())  # it leads; it will check the file
            return
        for nid, node in claimed.items():
            self._peers.setdefault(nid, node)
        sch.learnt(key, ctx.node_id, ids, time.monotonic())
        if len(rep.healthy_shares) >= threshold_for(man, self.threshold):
            return
        res = repair(net, vcap, report=rep, payer=payer)
        if res.placed:
            self.stats.repaired_files += 1
            self.stats.repaired_shares += len(res.placed)
            log.info("repairer: %s: %d -> %d healthy shares", si.hex()[:16], res.healthy_before, res.healthy_after)
            for node in res.placed.values():
                self._peers.setdefault(node.node_id, node)
            escrow = self._escrow_of(payer)
            if escrow is not None:  # leases it audits pay the repair back once their node fails
                escrow.repaired(man, rep, res.placed, self.spent - spent_before)
            sch.learnt(key, ctx.node_id, ids + [n.node_id for n in res.placed.values()], time.monotonic())
        if res.problems:
            self.stats.last_error = "; ".join(res.problems[:3])
