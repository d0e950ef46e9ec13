"""The node repairer's claim on a file's lease escrow (docs/specs/payments.md, "Repair paid from
the lease escrow"; issue 18 item 12).

A lease names a payer and, optionally, an auditor (`veil put --lease DAYS --lease-auditor
leader`: the node that will lead the file's repair). When the repairer (node/repair_role.py)
repairs a file, every active lease of that file its account audits (or pays) whose node no
longer keeps a healthy share is *challenged* on the ledger at once (``lease_challenge``), and
the repair's cost — what the repairer's payer spent on the check and the fetches of that visit,
split evenly over the leases it lost — is owed to the repairer by that lease. Once the
challenge's window is over and the node has not answered, ``settle`` submits ``lease_move``:
the failed node's unearned escrow pays the repair's cost back to the repairer and the rest goes
into a new lease for the share's new holder, who is told of it (``POST /v1/pay/leases``). A
node that answers in time keeps its lease, and the repairer is not paid back (it repaired for
nothing it can prove). A lease whose share nobody else keeps in a node that leases storage is
left alone (the payer's own audit fails it and is refunded).

What is owed is kept in memory: a node restarted between challenge and settlement leaves the
challenge to the payer's own audit (`veil audit --wait`), which fails or moves it.

Imports from: veil.errors, veil.format, veil.ledger, veil.client.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from veil.client.check import CheckReport
from veil.client.lease import node_terms
from veil.client.ledger_client import LedgerClient
from veil.client.network import Network, NodeInfo
from veil.client.wallet import Wallet
from veil.errors import VeilError
from veil.format.manifest import Manifest
from veil.ledger import tx as txm
from veil.ledger.lease import ACTIVE, Lease, lease_id
from veil.ledger.rules_lease import CHALLENGE_FEE_FACTOR

log = logging.getLogger("veil.repairer")


@dataclass
class Owed:
    si: bytes
    shnum: int
    holder: NodeInfo  # the share's new holder (placed by the repair, or another healthy holder)
    to: bytes | None  # its payee
    amount: int  # the repair's cost this lease pays back


@dataclass
class EscrowStats:
    challenged: int = 0
    moved: int = 0
    failed: int = 0
    answered: int = 0
    repaid: int = 0  # base units the escrows paid back to this repairer


class EscrowRepairs:
    def __init__(self, net: Network, ledger: LedgerClient, wallet: Wallet) -> None:
        self.net, self.ledger, self.wallet = net, ledger, wallet
        self.owed: dict[bytes, Owed] = {}  # lease id -> what it owes once its challenge runs out
        self.stats = EscrowStats()
        self._payees: dict[bytes, bytes | None] = {}

    def _payee(self, node: NodeInfo) -> bytes | None:
        if node.node_id not in self._payees:
            t = node_terms(self.net, node)
            self._payees[node.node_id] = t.payee if t is not None and t.lease_price_per_gb_day > 0 else None
        return self._payees[node.node_id]

    def leases_of(self, man: Manifest) -> list[tuple[bytes, Lease, int]]:
        """The active leases of this file that this repairer's account audits or pays."""
        shnum_of = {r: i for i, r in enumerate(man.roots)}
        me = self.wallet.address
        out = []
        for lid in self.ledger.leases_of(me):
            le = self.ledger.lease(lid)
            if le is not None and le.status == ACTIVE and le.root in shnum_of and me in (le.payer, le.auditor):
                out.append((lid, le, shnum_of[le.root]))
        return out

    def repaired(self, man: Manifest, rep: CheckReport, placed: dict[int, NodeInfo], cost: int) -> None:
        """After a repair that placed ``placed`` (shnum -> new holder) for ``cost``: challenge the
        leases whose node keeps no healthy share, and note what each owes once it fails (to the
        share's new holder, or another healthy holder of that share number that leases storage)."""
        leases = self.leases_of(man)
        if not leases:
            return
        holders: dict[int, list[NodeInfo]] = {}
        for sh in rep.shares:
            if sh.ok:
                holders.setdefault(sh.shnum, []).append(sh.node)
        for shnum, node in placed.items():
            holders.setdefault(shnum, []).insert(0, node)
        keeping = {(shnum, self._payee(n)) for shnum, nodes in holders.items() for n in nodes}
        lost = [(lid, le, shnum) for lid, le, shnum in leases
                if (shnum, le.payee) not in keeping and lid not in self.owed]  # fmt: skip
        for lid, le, shnum in lost:
            heirs = [(n, p) for n in holders.get(shnum, []) if (p := self._payee(n)) not in (None, le.payee, le.payer)]
            if not heirs:
                continue  # nobody else keeps that share (yet): the next repair of the file tries again
            holder, to = heirs[0]
            if not le.challenge_open():
                fee = CHALLENGE_FEE_FACTOR * self.ledger.genesis().params.min_fee
                self._submit(functools.partial(txm.lease_challenge, fee=fee, lease=lid))
                self.stats.challenged += 1
            self.owed[lid] = Owed(man.si, shnum, holder, to, cost // len(lost))

    def settle(self) -> None:
        """Move (or fail) every owed lease whose challenge ran out; forget those answered."""
        if not self.owed:
            return
        now = int(self.ledger.info()["now"])
        for lid, o in list(self.owed.items()):
            le = self.ledger.lease(lid)
            if le is None or le.status != ACTIVE or not le.challenge_open():
                self.stats.answered += le is not None and le.status == ACTIVE
                del self.owed[lid]
                continue
            if now <= le.chal_due:
                continue
            del self.owed[lid]
            unearned = min(le.amount - le.accrued(le.chal_at), le.escrow)
            if o.to is None or unearned < 2 or le.chal_at >= le.end:
                self._submit(functools.partial(txm.lease_fail, fee=self._fee(), lease=lid))
                self.stats.failed += 1
                continue
            amount = min(o.amount, unearned - 1)
            nonce = self._submit(functools.partial(txm.lease_move, fee=self._fee(), lease=lid, to=o.to, amount=amount))
            self.stats.moved += 1
            self.stats.repaid += amount
            new = lease_id(self.wallet.address, nonce)
            log.info("repairer: lease %s moved to %s (repair fee %d from the escrow)", lid.hex()[:16],
                     o.holder.label, amount)  # fmt: skip
            try:  # the new holder claims it and answers its challenges
                self.net.client(o.holder).call("POST", "/v1/pay/leases", {"lease": new, "si": o.si, "shnum": o.shnum})
            except VeilError as e:
                log.info("repairer: %s not told of its moved lease: %s", o.holder.label, e)

    def _fee(self) -> int:
        return self.ledger.genesis().params.min_fee

    def _submit(self, make: functools.partial[bytes]) -> int:
        chain = self.ledger.genesis().params.chain_id
        key = self.wallet.key
        txid, nonce = self.ledger.submit_with_nonce(key, lambda n: make(key, chain, nonce=n))
        self.ledger.wait_committed(txid)
        return nonce
