"""The free tier's economics against a farmer (issue 19 item 1, issue 18 item 10): what an
attacker with a budget pulls out of the allowance pool per epoch, before and after the rules of
payments.md "Free tier economics". A closed-form model over the ledger's real parameters
(``Params``), evaluated per epoch; pure, no I/O.

Before (the first landing): every new account has the full allowance; the pool pays any payee.
A farmer makes accounts for two fees and a refundable deposit each, and settles cheques for free
bytes between its own payer and payee accounts: nothing needs to be served.

After: an account's allowance is pro rata to its locked stake (full at ``allowance_stake``), and
the pool pays only registered nodes with a bond, each at most ``pool_epoch_budget × bond / total
bonded`` per epoch. The farmer's stake and bond stay locked (``unbond_seconds``), which costs it
the interest ``rate`` it could earn elsewhere; it gains what the pool pays its bonded nodes.

Storage (``storage``): what the same budget fills of every node's disk with open admission (all
of it, for free) and with ticket admission (payments.md, "Storage admission": quota bought with
locked stake), and the stake that filling every disk would lock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from veil.ledger.params import GB, Params


@dataclass(frozen=True)
class Outcome:
    accounts: int
    pool_drawn: int  # units per epoch
    cost: int  # units per epoch (fees, plus interest on locked money)
    profit: int
    roi: float  # profit / budget, per epoch
    epochs_to_drain: float | None  # pool / drawn, None if it never drains

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def before(p: Params, budget: int, pool: int, deposit: int = 1) -> Outcome:
    per_account = 2 * p.min_fee + deposit  # open + settle fees; the deposit comes back on close
    accounts = budget // per_account
    drawn = min(pool, accounts * p.free_payout(p.allowance_bytes))
    cost = accounts * 2 * p.min_fee
    return Outcome(accounts, drawn, cost, drawn - cost, (drawn - cost) / budget, pool / drawn if drawn else None)


def after(p: Params, budget: int, pool: int, honest_bonded: int, rate: float) -> Outcome:
    """The farmer puts ``budget`` into one bonded node and the rest into stake for its payers."""
    bond = max(p.min_node_bond, 0)
    if budget < bond:
        return Outcome(0, 0, 0, 0, 0.0, None)
    stake = budget - bond
    accounts = stake // p.allowance_stake
    free_bytes = accounts * p.allowance_bytes + p.allowance_for(stake % p.allowance_stake)
    cap = p.pool_epoch_budget * bond // (bond + honest_bonded)
    drawn = min(pool, cap, p.free_payout(free_bytes))
    cost = int(budget * rate) + 2 * accounts * p.min_fee
    return Outcome(accounts, drawn, cost, drawn - cost, (drawn - cost) / budget,
                   pool / drawn if drawn else None)  # fmt: skip


def honest_roi(p: Params, honest_bonded: int, served_free_bytes: int) -> float:
    """What an honest node earns per unit bonded per epoch from the pool, for the free bytes it serves."""
    bond = p.min_node_bond
    cap = p.pool_epoch_budget * bond // max(honest_bonded, bond)
    return min(cap, p.free_payout(served_free_bytes)) / bond


@dataclass(frozen=True)
class StorageOutcome:
    """What a budget fills of the network's disks (issue 18 item 10, storage side)."""

    bytes_per_node: int  # what the attacker keeps on each node
    filled: float  # of each node's disk
    locked: int  # units the attacker must keep locked for it
    cost: int  # units per epoch (interest on what is locked)
    stake_to_fill: int  # units locked to fill every disk of the network

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def storage(p: Params, budget: int, nodes: int, disk: int, rate: float, admission: bool) -> StorageOutcome:
    """Open admission: anyone fills every disk for nothing but bandwidth. Ticket admission: quota
    is ``storage_quota_bytes`` per node for each ``allowance_stake`` locked (however many accounts
    the stake is split over), so what a budget fills is proportional to it."""
    if not admission:
        return StorageOutcome(disk, 1.0, 0, 0, 0)
    accounts, rest = divmod(budget, p.allowance_stake)
    per_node = min(disk, accounts * p.storage_quota_bytes + p.storage_quota_for(rest))
    locked = min(budget, -(-per_node * p.allowance_stake // p.storage_quota_bytes)) if p.storage_quota_bytes else 0
    to_fill = -(-disk * p.allowance_stake // p.storage_quota_bytes) if p.storage_quota_bytes else 0
    return StorageOutcome(per_node, per_node / disk if disk else 0.0, locked, int(locked * rate), to_fill)


def run(budget: int, pool: int, honest_nodes: int, rate: float, params: Params | None = None,
        node_disk: int = 10**12) -> dict[str, Any]:  # fmt: skip
    p = params or Params(chain_id="sim")
    honest_bonded = honest_nodes * p.min_node_bond
    b = before(p, budget, pool)
    a = after(p, budget, pool, honest_bonded, rate)
    return {
        "budget": budget,
        "pool": pool,
        "honest_nodes": honest_nodes,
        "interest_per_epoch": rate,
        "before": b.to_dict(),
        "after": a.to_dict(),
        "honest_node_roi": honest_roi(p, honest_bonded, 100 * p.allowance_bytes),
        "free_bytes_per_unit_staked": p.allowance_bytes / p.allowance_stake,
        "node_disk": node_disk,
        "storage_open": storage(p, budget, honest_nodes, node_disk, rate, admission=False).to_dict(),
        "storage_ticket": storage(p, budget, honest_nodes, node_disk, rate, admission=True).to_dict(),
        "price_per_gb": p.price_per_gb / GB,
    }
