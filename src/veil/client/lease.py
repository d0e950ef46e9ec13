"""Paid storage: leases for the shares of an uploaded file, and audits of the nodes keeping them.

``open_leases`` pays each charging node holding a share its advertised price per GB-day for
``days`` days into a ledger escrow (``lease_open``, which names only the share's block root,
block count and block size: not the storage index) and tells the node the lease id, storage
index and share number, so it can claim what accrues and answer challenges.

``audit`` (anyone holding the verify cap and named as payer or auditor) asks each leased node
for a random block with its Merkle proof off the ledger, which costs nothing on chain. A node
that fails is *challenged on the ledger* (``lease_challenge``): the ledger picks a block, and
the node must post it with its proof (``lease_answer``) before the challenge window ends. Only
a challenge left unanswered fails the lease (``lease_fail``, which ``audit`` submits once the
window is over): the ledger checks the evidence itself, so an auditor's word fails no lease.

With ``repair`` (``LeaseRepair``), a lease whose node did not answer is not failed but *moved*:
the file is repaired (paid by the auditor's payer), and ``lease_move`` gives the part of the
escrow the failed node had not earned to the share's new holder, less the repair's cost, which
goes to the auditor: repair paid from the file's lease escrow, on the ledger.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from veil.errors import IntegrityError, PaymentRequiredError, VeilError
from veil.format.caps import VerifyCap
from veil.format.manifest import Manifest
from veil.ledger import tx as txm
from veil.ledger.lease import ACTIVE, MAX_LEASE_BLOCK, Lease, lease_id
from veil.ledger.rules_lease import CHALLENGE_FEE_FACTOR
from veil.protocol import payments as pay
from veil.protocol.family import leader_order

from .check import check
from .ledger_client import LedgerClient
from .locate import locate
from .network import Network, NodeInfo
from .payer import Payer, Paying
from .ranges import read_blocks
from .repair import repair
from .upload import UploadResult
from .wallet import Wallet

DAY = 86_400


@dataclass(frozen=True)
class LeaseReceipt:
    shnum: int
    node: NodeInfo
    lease: bytes | None  # None: the node does not lease storage (free node or price 0)
    amount: int = 0
    note: str = ""


def _lease_open(wallet: Wallet, chain: str, fee: int, payee: bytes, man: Manifest, shnum: int, size: int, expires: int,
                amount: int, auditor: bytes | None, nonce: int) -> bytes:  # fmt: skip
    return txm.lease_open(wallet.key, chain, nonce, fee, payee, man.roots[shnum], man.nseg, _bsize(man), size, expires,
                          amount, auditor)  # fmt: skip


def _bsize(man: Manifest) -> int:
    return max(man.bsize, man.lbsize)


def fetch_terms(net: Network, node: NodeInfo) -> pay.Terms:
    """The node's terms, believed only if they name the pinned node's own key and address."""
    return pay.check_terms(pay.Terms.from_wire(net.client(node).call("GET", "/v1/pay/terms")), node.node_id)


def node_terms(net: Network, node: NodeInfo) -> pay.Terms | None:
    try:
        return fetch_terms(net, node)
    except VeilError:
        return None


def repair_leader_account(net: Network, res: UploadResult) -> bytes:
    """The account of the node expected to lead the file's repair (the first of its holders in
    leader order, protocol/family.py): named as the leases' auditor, its repairer is paid back
    from the escrow when it repairs a share whose node failed (node/repair_escrow.py)."""
    for node in leader_order(res.manifest.si, list(res.placement.values())):
        t = node_terms(net, node)
        if t is not None:
            return t.payee
    raise PaymentRequiredError("no holder of the file tells its account (GET /v1/pay/terms): "
                               "name the auditor with --lease-auditor ADDRESS")


def open_leases(net: Network, ledger: LedgerClient, wallet: Wallet, res: UploadResult, days: int,
                auditor: bytes | None = None) -> list[LeaseReceipt]:  # fmt: skip
    """One lease per share placed on a node that leases storage; paid from ``wallet``; ``auditor``
    (an account) may challenge them and move them to a repaired share's new holder."""
    if days <= 0:
        raise PaymentRequiredError("--lease needs a positive number of days")
    params = ledger.genesis().params
    man = res.manifest
    size = man.share_len()
    out: list[LeaseReceipt] = []
    expires = int(time.time()) + days * DAY
    if _bsize(man) > MAX_LEASE_BLOCK:
        return [LeaseReceipt(shnum, node, None, note=f"blocks over {MAX_LEASE_BLOCK} bytes cannot be audited on the ledger")
                for shnum, node in sorted(res.placement.items())]  # fmt: skip
    for shnum, node in sorted(res.placement.items()):
        try:
            terms: pay.Terms | None = fetch_terms(net, node)
        except pay.ForeignPayeeError as e:
            out.append(LeaseReceipt(shnum, node, None, note=f"not leased: {e}"))
            continue
        except VeilError:
            terms = None
        if terms is None or terms.lease_price_per_gb_day == 0:
            out.append(LeaseReceipt(shnum, node, None, note="the node does not lease storage"))
            continue
        amount = max(1, pay.lease_cost(size, days, terms.lease_price_per_gb_day))
        build = functools.partial(_lease_open, wallet, params.chain_id, params.min_fee, terms.payee, man, shnum, size,
                                  expires, amount, auditor)  # fmt: skip
        _txid, nonce = ledger.submit_with_nonce(wallet.key, build)
        lid = lease_id(wallet.address, nonce)
        note = ""
        try:
            net.client(node).call("POST", "/v1/pay/leases", {"lease": lid, "si": man.si, "shnum": shnum})
        except VeilError as e:  # the node can still find it on the ledger; it just was not told
            note = f"node not told: {e}"
        out.append(LeaseReceipt(shnum, node, lid, amount, note))
    return out


@dataclass(frozen=True)
class AuditResult:
    lease: bytes
    shnum: int
    node: str
    index: int  # the block asked for (off the ledger, or by the ledger's challenge)
    ok: bool
    problem: str = ""
    reported: bool = False  # a challenge or a failure was submitted to the ledger
    state: str = "passed"  # passed | challenged (the node may still answer) | answered | failed | moved


def _challenge(net: Network, node: NodeInfo, vcap: VerifyCap, shnum: int, le: Lease, man: Manifest, index: int,
               payer: Paying | None) -> str:  # fmt: skip
    """'' if the node proved it holds block ``index`` of the leased share, else what went wrong."""
    try:
        if le.root != man.roots[shnum]:
            return "the block does not match the share root in the lease"
        # a charging node is paid for the challenge block like for any other
        read_blocks(net.transport, node, man, vcap.manifest_hash, shnum, index, 1, payer)
        return ""
    except PaymentRequiredError:
        raise
    except IntegrityError:
        return "the block does not match the share root in the lease"
    except VeilError as e:
        return str(e)[:200]


def _submit(ledger: LedgerClient, wallet: Wallet, make: Callable[..., bytes], fee: int, lid: bytes) -> None:
    chain = ledger.genesis().params.chain_id
    build = functools.partial(make, wallet.key, chain, fee=fee, lease=lid)
    ledger.wait_committed(ledger.submit_with_nonce(wallet.key, lambda n: build(nonce=n))[0])


class LeaseRepair:
    """Moves the leases of nodes that lost their share to the share's new holder, after repairing
    the file without them (paid by ``payer``; the cost comes back to the auditor from the escrow)."""

    def __init__(self, net: Network, ledger: LedgerClient, wallet: Wallet, vcap: VerifyCap,
                 payer: Payer | None) -> None:  # fmt: skip
        self.net, self.ledger, self.wallet, self.vcap, self.payer = net, ledger, wallet, vcap, payer
        self._payees: dict[bytes, bytes | None] = {}  # node id -> its payee (None: it leases nothing)
        self.why_not = ""  # why the last lease could not be moved

    def _payee(self, node: NodeInfo) -> bytes | None:
        if node.node_id not in self._payees:
            t = node_terms(self.net, node)
            self._payees[node.node_id] = t.payee if t is not None and t.lease_price_per_gb_day > 0 else None
        return self._payees[node.node_id]

    def _spent(self) -> int:
        return self.payer.spent if self.payer is not None else 0

    def _repaired_holders(self, failed: bytes, shnum: int) -> tuple[list[NodeInfo], int]:
        """Check the file, count the failed node's copies out, repair it on other nodes; the
        healthy holders of ``shnum`` that lease storage, and what the check and repair spent."""
        before = self._spent()
        skip = {c.node_id for c in self.net.storage_nodes_for(self.vcap.storage_index) if self._payee(c) == failed}
        rep = check(self.net, self.vcap, payer=self.payer)
        rep.shares = [sh for sh in rep.shares if sh.node.node_id not in skip and self._payee(sh.node) != failed]
        res = repair(self.net, self.vcap, report=rep, skip=skip, payer=self.payer)
        holders = [sh.node for sh in rep.shares if sh.ok and sh.shnum == shnum]
        if shnum in res.placed:
            holders.append(res.placed[shnum])
        return [h for h in holders if self._payee(h) is not None], self._spent() - before

    def move(self, lid: bytes, le: Lease, shnum: int, label: str) -> AuditResult | None:
        """Move lease ``lid`` (its challenge ran out) to a healthy holder of ``shnum`` other than
        the failed node; None if there is none (the caller fails the lease instead)."""
        unearned = min(le.amount - le.accrued(le.chal_at), le.escrow)
        if unearned < 1 or le.chal_at >= le.end:
            self.why_not = "nothing of the escrow is left to move"
            return None
        holders, cost = self._repaired_holders(le.payee, shnum)
        if not holders:
            self.why_not = f"no other node that leases storage holds share {shnum} after the repair"
            return None
        node = holders[0]
        payee = self._payee(node)
        assert payee is not None
        fee = min(cost, unearned - 1)
        params = self.ledger.genesis().params
        build = _mover(self.wallet, params.chain_id, params.min_fee, lid, payee, fee)
        txid, nonce = self.ledger.submit_with_nonce(self.wallet.key, build)
        self.ledger.wait_committed(txid)
        new = lease_id(self.wallet.address, nonce)
        note = ""
        try:  # the new holder claims it and answers its challenges
            self.net.client(node).call("POST", "/v1/pay/leases", {"lease": new, "si": self.vcap.storage_index,
                                                                  "shnum": shnum})  # fmt: skip
        except VeilError as e:
            note = f"; {node.label} not told: {e}"
        return AuditResult(lid, shnum, label, le.chal_index, False,
                           f"the node did not answer the ledger's challenge; lease moved to {node.label} "
                           f"(lease {new.hex()[:16]}…, repair fee {fee} from the escrow){note}", True, "moved")  # fmt: skip


def _mover(wallet: Wallet, chain: str, fee: int, lid: bytes, to: bytes, amount: int) -> Callable[[int], bytes]:
    def build(nonce: int) -> bytes:
        return txm.lease_move(wallet.key, chain, nonce, fee, lid, to, amount)

    return build


def _settle_challenge(ledger: LedgerClient, wallet: Wallet, lid: bytes, le: Lease, shnum: int, label: str,
                      report: bool, mover: LeaseRepair | None = None) -> AuditResult:  # fmt: skip
    """A lease with a challenge open on the ledger: fail it (or move it) if the window is over."""
    now = int(ledger.info()["now"])
    if now <= le.chal_due:
        return AuditResult(lid, shnum, label, le.chal_index, False,
                           f"challenged on the ledger; the node may answer until {le.chal_due}", False, "challenged")  # fmt: skip
    why = ""
    if report and mover is not None:
        moved = mover.move(lid, le, shnum, label)
        if moved is not None:
            return moved
        why = f"; not moved: {mover.why_not}"
    if report:
        _submit(ledger, wallet, txm.lease_fail, ledger.genesis().params.min_fee, lid)
    return AuditResult(lid, shnum, label, le.chal_index, False, "the node did not answer the ledger's challenge" + why,
                       report, "failed" if report else "challenged")  # fmt: skip


def audit(net: Network, ledger: LedgerClient, wallet: Wallet, vcap: VerifyCap, payer: Payer | None = None,
          rounds: int = 1, report: bool = True, wait: bool = False, repair_file: bool = False) -> list[AuditResult]:  # fmt: skip
    """Challenge every active lease of this file that ``wallet`` pays for or audits.

    A node that fails the off-ledger check is challenged on the ledger (``report``); with
    ``wait``, the audit then waits for each challenge to be answered or to run out, and fails
    the leases whose challenge ran out — or, with ``repair_file``, repairs the file and moves
    those leases to the shares' new holders (``LeaseRepair``)."""
    mover = LeaseRepair(net, ledger, wallet, vcap, payer) if repair_file else None
    loc = locate(net, vcap.storage_index, vcap.manifest_hash)
    man = loc.manifest
    shnum_of = {r: i for i, r in enumerate(man.roots)}
    by_payee: dict[bytes, NodeInfo] = {}
    # The nodes to challenge: those that say they hold this file's shares (found through the
    # DHT or the node list), and any node the network file lists.
    known = {n.node_id: n for nodes in loc.holders.values() for n in nodes}
    known.update({n.node_id: n for n in net.storage_nodes()})
    # locate stops once it has enough holders: the candidates name the rest (and who left)
    known.update({n.node_id: n for n in net.storage_nodes_for(vcap.storage_index)})
    for sn in known.values():
        t = node_terms(net, sn)
        if t is not None:
            by_payee[t.payee] = sn
    params = ledger.genesis().params
    results: list[AuditResult] = []
    challenged: list[tuple[bytes, int, str]] = []
    for lid in ledger.leases_of(wallet.address):
        le = ledger.lease(lid)
        if le is None or le.root not in shnum_of or le.status != ACTIVE or wallet.address not in (le.payer, le.auditor):
            continue
        shnum = shnum_of[le.root]
        node = by_payee.get(le.payee)
        label = node.label if node is not None else le.payee.hex()[:16]
        if le.challenge_open():
            r = _settle_challenge(ledger, wallet, lid, le, shnum, label, report, mover)
            results.append(r)
            if r.state == "challenged":
                challenged.append((lid, shnum, label))
            continue
        for _ in range(rounds):
            index = secrets.randbelow(man.nseg)
            problem = "the node holds no share of this file any more" if node is None else _challenge(
                net, node, vcap, shnum, le, man, index, payer)  # fmt: skip
            if problem and report:
                _submit(ledger, wallet, txm.lease_challenge, CHALLENGE_FEE_FACTOR * params.min_fee, lid)
                challenged.append((lid, shnum, label))
                problem += "; challenged on the ledger"
            results.append(AuditResult(lid, shnum, label, index, not problem, problem, bool(problem and report),
                                       "challenged" if problem else "passed"))  # fmt: skip
            if problem:
                break
    if wait and challenged:
        results = [r for r in results if r.state != "challenged"] + _wait(ledger, wallet, challenged, report, mover)
    return results


def _wait(ledger: LedgerClient, wallet: Wallet, pending: list[tuple[bytes, int, str]], report: bool,
          mover: LeaseRepair | None) -> list[AuditResult]:  # fmt: skip
    """Wait until each challenged lease is answered or its window is over (then fail it)."""
    out: list[AuditResult] = []
    while pending:
        left = []
        for lid, shnum, label in pending:
            le = ledger.lease(lid)
            if le is None or not le.challenge_open():
                answered = le is not None and le.status == ACTIVE
                out.append(AuditResult(lid, shnum, label, 0, answered,
                                       "" if answered else "the lease has failed", False,
                                       "answered" if answered else "failed"))  # fmt: skip
                continue
            if int(ledger.info()["now"]) > le.chal_due:
                out.append(_settle_challenge(ledger, wallet, lid, le, shnum, label, report, mover))
                continue
            left.append((lid, shnum, label))
        pending = left
        if pending:
            time.sleep(0.5)
    return out
