"""Network parameters fixed in genesis: chain id, allowance, epoch, prices, shares, windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from veil.errors import LedgerError
from veil.format import fields

GB = 10**9
BASIS_POINTS = 10_000
MAX_CHAIN_ID = 64
_ECONOMY = ("allowance_stake", "storage_quota_bytes", "unbond_seconds", "min_node_bond", "pool_epoch_budget",
            "free_opens_per_epoch")


@dataclass(frozen=True)
class Params:
    chain_id: str
    allowance_bytes: int = 100 * GB  # free download bytes per account per epoch
    epoch_seconds: int = 30 * 86_400
    price_per_gb: int = 10**8  # units the allowance pool pays a node per GB of free download
    uploader_share_bp: int = 2_000  # basis points of every *paid* download owed to the uploader
    min_fee: int = 1
    challenge_seconds: int = 86_400  # window after a payer's unilateral close
    max_cheque_uploaders: int = 64
    # Free is not free to farm (payments.md, "Free tier economics"):
    allowance_stake: int = 10 * 10**9  # locked stake that earns the full allowance (and storage quota); less earns pro rata
    storage_quota_bytes: int = 10 * GB  # free storage quota of an account with ``allowance_stake`` locked
    unbond_seconds: int = 30 * 86_400  # how long unstaked money and node bonds stay locked
    min_node_bond: int = 100 * 10**9  # a node must bond this much to be paid by the allowance pool
    pool_epoch_budget: int = 10**6 * 10**9  # most the pool pays all nodes together per epoch (split by bond)
    free_opens_per_epoch: int = 64  # fee-less, deposit-less free-tier channel opens per account per epoch

    def __post_init__(self) -> None:
        if not 0 < len(self.chain_id) <= MAX_CHAIN_ID or not self.chain_id.isascii():
            raise LedgerError("chain id must be 1..64 ASCII characters", "malformed")
        for name in ("allowance_bytes", "price_per_gb", "min_fee", "allowance_stake", "storage_quota_bytes",
                     "min_node_bond", "pool_epoch_budget", "free_opens_per_epoch"):
            if not 0 <= getattr(self, name) < 2**63:
                raise LedgerError(f"parameter {name} out of range", "malformed")
        if self.allowance_stake <= 0:
            raise LedgerError("allowance_stake must be positive", "malformed")
        if not 0 < self.epoch_seconds < 2**40 or not 0 <= self.challenge_seconds < 2**40 or not 0 <= self.unbond_seconds < 2**40:
            raise LedgerError("epoch or challenge window out of range", "malformed")
        if not 0 <= self.uploader_share_bp <= BASIS_POINTS:
            raise LedgerError("uploader share must be 0..10000 basis points", "malformed")
        if not 0 < self.max_cheque_uploaders <= 1024:
            raise LedgerError("max_cheque_uploaders must be 1..1024", "malformed")

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, value: Any) -> Params:
        try:
            m = fields.require_map(value, "params", set(cls.__dataclass_fields__))
            return cls(
                chain_id=fields.get_str(m, "chain_id", "params", MAX_CHAIN_ID),
                allowance_bytes=fields.get_int(m, "allowance_bytes", "params"),
                epoch_seconds=fields.get_int(m, "epoch_seconds", "params"),
                price_per_gb=fields.get_int(m, "price_per_gb", "params"),
                uploader_share_bp=fields.get_int(m, "uploader_share_bp", "params"),
                min_fee=fields.get_int(m, "min_fee", "params"),
                challenge_seconds=fields.get_int(m, "challenge_seconds", "params"),
                max_cheque_uploaders=fields.get_int(m, "max_cheque_uploaders", "params"),
                **{k: fields.get_int(m, k, "params") for k in _ECONOMY},
            )
        except LedgerError:
            raise
        except Exception as e:
            raise LedgerError(f"bad network parameters: {e}", "malformed") from e

    def allowance_for(self, stake: int) -> int:
        """Free download bytes per epoch of an account with ``stake`` locked (pro rata, capped)."""
        return self.allowance_bytes * min(stake, self.allowance_stake) // self.allowance_stake

    def storage_quota_for(self, stake: int) -> int:
        """Free storage bytes of an account with ``stake`` locked (pro rata, capped)."""
        return self.storage_quota_bytes * min(stake, self.allowance_stake) // self.allowance_stake

    def free_payout(self, nbytes: int) -> int:
        """What the allowance pool pays a node for ``nbytes`` of free-tier download."""
        return nbytes * self.price_per_gb // GB

    def uploader_share(self, paid: int) -> int:
        """The uploader's part of a cumulative paid amount (rounded down)."""
        return paid * self.uploader_share_bp // BASIS_POINTS
