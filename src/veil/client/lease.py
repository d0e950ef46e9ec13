"""Paid storage: leases for the shares of an uploaded file, and audits of the nodes keeping them.

``open_leases`` pays each charging node holding a share its advertised price per GB-day for
``days`` days into a ledger escrow (``lease_open``) and tells the node the lease id so it
claims what accrues. ``audit`` (anyone holding the verify cap and named as payer or auditor)
asks each leased node for a random block with its Merkle proof, checks it against the share
root in the lease, and reports a failure on the ledger (``lease_fail``): accrual stops, the
rest of the escrow goes back to the payer, and the failure is in a block for all to see.
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass

from veil.errors import IntegrityError, PaymentRequiredError, VeilError
from veil.format import cbor
from veil.format.caps import VerifyCap
from veil.format.manifest import Manifest
from veil.format.merkle import verify_range
from veil.format.share import BLOCK_TREE
from veil.ledger import tx as txm
from veil.ledger.lease import ACTIVE, Lease, lease_id
from veil.protocol import payments as pay
from veil.protocol.storage import parse_range_head, range_reply_max

from .ledger_client import LedgerClient
from .locate import locate
from .network import Network, NodeInfo
from .payer import Payer
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
                amount: int, nonce: int) -> bytes:  # fmt: skip
    return txm.lease_open(wallet.key, chain, nonce, fee, payee, man.si, shnum, man.roots[shnum], size, expires, amount)


def fetch_terms(net: Network, node: NodeInfo) -> pay.Terms:
    """The node's terms, believed only if they name the pinned node's own key and address."""
    return pay.check_terms(pay.Terms.from_wire(net.client(node).call("GET", "/v1/pay/terms")), node.node_id)


def node_terms(net: Network, node: NodeInfo) -> pay.Terms | None:
    try:
        return fetch_terms(net, node)
    except VeilError:
        return None


def open_leases(net: Network, ledger: LedgerClient, wallet: Wallet, res: UploadResult, days: int) -> list[LeaseReceipt]:
    """One lease per share placed on a node that leases storage; paid from ``wallet``."""
    if days <= 0:
        raise PaymentRequiredError("--lease needs a positive number of days")
    params = ledger.genesis().params
    man = res.manifest
    size = man.share_len()
    out: list[LeaseReceipt] = []
    expires = int(time.time()) + days * DAY
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
                                  expires, amount)  # fmt: skip
        _txid, nonce = ledger.submit_with_nonce(wallet.key, build)
        lid = lease_id(wallet.address, nonce)
        note = ""
        try:
            net.client(node).call("POST", "/v1/pay/leases", {"lease": lid})
        except VeilError as e:  # the node can still find it on the ledger; it just was not told
            note = f"node not told: {e}"
        out.append(LeaseReceipt(shnum, node, lid, amount, note))
    return out


@dataclass(frozen=True)
class AuditResult:
    lease: bytes
    shnum: int
    node: str
    index: int
    ok: bool
    problem: str = ""
    reported: bool = False


def _challenge(net: Network, node: NodeInfo, le: Lease, man: Manifest, index: int, payer: Payer | None) -> str:
    """'' if the node proved it holds block ``index`` of the leased share, else what went wrong."""
    path = f"/v1/shares/{le.si.hex()}/{le.shnum}?start={index}&count=1"
    n = man.block_len(index)
    buf = memoryview(bytearray(range_reply_max(1, n)))
    client = net.client(node)
    try:
        if payer is None:
            client.request("GET", path, into=buf)
        else:  # a charging node is paid for the challenge block like for any other
            payer.fetch(client, node, path, n, man.payout, buf)
        head = parse_range_head(buf)
        if head.start != index or head.count != 1:
            return "answered another block than asked"
        block = buf[head.size : head.size + n]
        verify_range(BLOCK_TREE, le.root, man.nseg, index, [BLOCK_TREE.leaf(block)], head.bproof)
        return ""
    except PaymentRequiredError:
        raise
    except IntegrityError:
        return "the block does not match the share root in the lease"
    except VeilError as e:
        return str(e)[:200]


def audit(net: Network, ledger: LedgerClient, wallet: Wallet, vcap: VerifyCap, payer: Payer | None = None,
          rounds: int = 1, report: bool = True) -> list[AuditResult]:  # fmt: skip
    """Challenge every active lease of this file that ``wallet`` pays for or audits."""
    loc = locate(net, vcap.storage_index, vcap.manifest_hash)
    man = loc.manifest
    by_payee: dict[bytes, NodeInfo] = {}
    # The nodes to challenge: those that say they hold this file's shares (found through the
    # DHT or the node list), and any node the network file lists.
    known = {n.node_id: n for nodes in loc.holders.values() for n in nodes}
    known.update({n.node_id: n for n in net.storage_nodes()})
    for sn in known.values():
        t = node_terms(net, sn)
        if t is not None:
            by_payee[t.payee] = sn
    params = ledger.genesis().params
    results: list[AuditResult] = []
    for lid in ledger.leases_of(wallet.address):
        le = ledger.lease(lid)
        if le is None or le.si != man.si or le.status != ACTIVE or wallet.address not in (le.payer, le.auditor):
            continue
        node = by_payee.get(le.payee)
        for _ in range(rounds):
            index = secrets.randbelow(man.nseg)
            problem = "the node holds no share of this file any more" if node is None else _challenge(
                net, node, le, man, index, payer)  # fmt: skip
            label = node.label if node is not None else le.payee.hex()[:16]
            reported = False
            if problem and report:
                evidence = cbor.encode({"index": index, "problem": problem[:200]})
                build = functools.partial(txm.lease_fail, wallet.key, params.chain_id, fee=params.min_fee, lease=lid,
                                          evidence=evidence)  # fmt: skip
                ledger.submit_with_nonce(wallet.key, lambda n, build=build: build(nonce=n))  # type: ignore[misc]
                reported = True
            results.append(AuditResult(lid, le.shnum, label, index, not problem, problem, reported))
            if problem:
                break
    return results
