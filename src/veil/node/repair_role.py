"""The ``repairer`` role: keeps the files this node stores shares of at full health.

A node holds each such file's manifest, and a manifest plus its storage index is all a verify
cap contains, so the node knows the verify cap of every file it stores a share of; no
registration is needed and no key is ever seen. Every ``repair_interval`` seconds (with
jitter) it walks those files:

1. locate the file (cheap: who claims which share);
2. only the file's *leader* goes on: the first node, in the placement order for that storage
   index, among the nodes that claim a share. Every holder computes the same leader, so one
   node does the work. A holder that is not the leader still repairs a file that has stayed
   below the threshold for ``FALLBACK_ROUNDS`` of its rounds (the leader may not run this
   role); racing repairers are safe (client/repair.py);
3. the leader checks it (block samples verified against the manifest) and repairs it
   (client/repair.py) when fewer than ``repair_threshold`` shares are healthy.

Config keys (from `veil node run`): ``repair_interval`` (seconds, default 3600),
``repair_threshold`` (``happy`` (default), ``n``, or a share count), ``repair_wallet`` (a wallet
that pays charging nodes for the blocks checked and fetched; passphrase from VEIL_PASSPHRASE)
and ``repair_max_spend`` (most VEIL it spends while the node runs; default [payments]
max_spend). Without a wallet the repairer works against free nodes only.

Imports from: veil.errors, veil.format, veil.protocol, veil.client, veil.node.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.client.check import check
from veil.client.config import payment_setting
from veil.client.ledger_client import LedgerClient
from veil.client.locate import locate
from veil.client.network import Network
from veil.client.payer import Payer
from veil.client.repair import repair
from veil.client.wallet import Wallet, open_wallet
from veil.errors import UsageError, VeilError
from veil.format.caps import VerifyCap
from veil.format.manifest import Manifest, manifest_hash, parse_manifest
from veil.ledger.amount import parse_amount
from veil.net.server import Router
from veil.node.context import NodeContext
from veil.node.netview import node_network
from veil.protocol.placement import permuted

log = logging.getLogger("veil.repairer")

DEFAULT_INTERVAL = 3600.0
FALLBACK_ROUNDS = 3


def parse_threshold(text: str) -> str | int:
    t = str(text).strip().lower()
    if t in ("happy", "n"):
        return t
    if t.isdigit() and 1 <= int(t) <= 255:
        return int(t)
    raise UsageError(f"bad repair threshold {text!r}: use happy, n, or a share count 1..255")


def threshold_for(man: Manifest, threshold: str | int) -> int:
    """Repair when fewer shares than this are healthy (never asks for more than n)."""
    if threshold == "happy":
        return man.happy
    if threshold == "n":
        return man.n
    assert isinstance(threshold, int)
    return max(man.k, min(man.n, threshold))


def leader(si: bytes, holders: list[bytes]) -> bytes | None:
    """The node that repairs this file: the first claimed holder in placement order."""
    return holders[permuted(si, holders)[0]] if holders else None


@dataclass
class RepairStats:
    rounds: int = 0
    checked: int = 0
    repaired_files: int = 0
    repaired_shares: int = 0
    last_error: str = ""


class RepairerRole:
    name = "repairer"

    def __init__(self) -> None:
        self.ctx: NodeContext | None = None
        self.interval = DEFAULT_INTERVAL
        self.threshold: str | int = "happy"
        self.stats = RepairStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._below: dict[bytes, int] = {}  # storage index -> rounds seen below threshold as non-leader
        self._net: Network | None = None
        self._wallet: Wallet | None = None
        self._max_spend = 0
        self._payer: Payer | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        self.ctx = ctx
        self.interval = float(ctx.config.repair_interval or DEFAULT_INTERVAL)
        self.threshold = parse_threshold(ctx.config.repair_threshold or "happy")
        wallet, limit = ctx.config.repair_wallet, ctx.config.repair_max_spend
        if wallet:
            secret = os.environ.get("VEIL_PASSPHRASE")
            if secret is None:
                raise UsageError("--repair-wallet needs the wallet's passphrase in VEIL_PASSPHRASE")
            self._wallet = open_wallet(Path(str(wallet)), secret)  # now: a wrong passphrase stops the node at start
            self._max_spend = parse_amount(str(limit)) if limit else payment_setting("max_spend")
        elif limit:
            raise UsageError("--repair-max-spend needs --repair-wallet")

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

    @property
    def spent(self) -> int:
        return self._payer.spent if self._payer is not None else 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="repairer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._net is not None:
            self._net.close()
        if self._payer is not None:
            self._payer.close()
            self._payer.ledger.close()

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {"interval_ms": int(self.interval * 1000), "threshold": str(self.threshold), "rounds": s.rounds,
                "checked": s.checked, "repaired_files": s.repaired_files, "repaired_shares": s.repaired_shares,
                "last_error": s.last_error[:200], "spent": self.spent}

    def _loop(self) -> None:
        rng = random.Random()
        while not self._stop.wait(self.interval * rng.uniform(0.8, 1.2)):
            try:
                self.run_once()
            except Exception as e:  # keep the loop alive; the status says what went wrong
                log.exception("repair round failed")
                self.stats.last_error = str(e)
            self.stats.rounds += 1

    def _network(self) -> Network:
        if self._net is None:
            assert self.ctx is not None
            self._net = node_network(self.ctx)
        return self._net

    def run_once(self) -> None:
        """One pass over every file this node holds a share of."""
        ctx = self.ctx
        assert ctx is not None
        store = ctx.services.store
        dht = ctx.services.dht
        if store is None or (dht is not None and not dht.joined.is_set()):
            return
        draining = ctx.services.draining
        for si in store.storage_indexes():
            for mhash in store.slots(si):  # each slot is its own file (a squatter's slot fails check)
                if self._stop.is_set() or (draining is not None and draining()):
                    return
                shnums, mbytes = store.list_shares(si, mhash)
                if mbytes is None or not shnums:
                    continue
                try:
                    self._one(si, mbytes)
                except VeilError as e:
                    self.stats.last_error = f"{si.hex()[:16]}: {e}"
                    log.info("repairer: %s: %s", si.hex()[:16], e)

    def _one(self, si: bytes, mbytes: bytes) -> None:
        ctx = self.ctx
        assert ctx is not None
        net = self._network()
        man = parse_manifest(mbytes)
        vcap = VerifyCap(si, manifest_hash(mbytes))
        limit = threshold_for(man, self.threshold)
        loc = locate(net, si, vcap.manifest_hash)
        claimed = sorted({n.node_id for nodes in loc.holders.values() for n in nodes})
        if leader(si, claimed) != ctx.node_id:
            if loc.share_count() >= limit:
                self._below.pop(si, None)
                return
            seen = self._below[si] = self._below.get(si, 0) + 1
            if seen < FALLBACK_ROUNDS:
                return
        self.stats.checked += 1
        payer = self._payer_for(net)
        rep = check(net, vcap, payer=payer)
        if len(rep.healthy_shares) >= limit:
            self._below.pop(si, None)
            return
        res = repair(net, vcap, report=rep, payer=payer)
        self._below.pop(si, None)
        if res.placed:
            self.stats.repaired_files += 1
            self.stats.repaired_shares += len(res.placed)
            log.info("repairer: %s: %d -> %d healthy shares", si.hex()[:16], res.healthy_before, res.healthy_after)
        if res.problems:
            self.stats.last_error = "; ".join(res.problems[:3])
