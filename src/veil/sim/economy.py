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


def run(budget: int, pool: int, honest_nodes: int, rate: float, params: Params | None = None) -> dict[str, Any]:
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
        "price_per_gb": p.price_per_gb / GB,
    }
