"""Network parameters fixed in genesis: chain id, allowance, epoch, prices, shares, windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from veil.errors import LedgerError
from veil.format import fields

GB = 10**9
BASIS_POINTS = 10_000
MAX_CHAIN_ID = 64
# Names (names.md): optional in genesis (an older genesis has none and gets the defaults), and
# left out of the wire form when at their defaults, so older genesis bytes stay what they were.
_NAMES = {"name_fee": 10**9, "name_commit_min": 60, "name_commit_max": 86_400, "name_year": 365 * 86_400,
          "name_grace": 30 * 86_400, "name_auction_seconds": 7 * 86_400, "name_auction_extend": 3_600,
          "name_max_years": 10}
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
    name_fee: int = 10**9  # a name's yearly fee at 7+ characters; doubles for each character fewer
    name_commit_min: int = 60  # a reveal must wait this long after its commit (seconds)
    name_commit_max: int = 86_400  # ... and come within this long of it
    name_year: int = 365 * 86_400  # what one paid year lasts
    name_grace: int = 30 * 86_400  # after expiry only the owner may renew, for this long; then it is free
    name_auction_seconds: int = 7 * 86_400  # a short name's auction runs this long from its first bid
    name_auction_extend: int = 3_600  # a bid this close to the end moves the end to bid time + this
    name_max_years: int = 10  # most years one registration or renewal may pay, and most ahead of now

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
        for name in _NAMES:
            if not 0 <= getattr(self, name) < 2**40 or (name in ("name_year", "name_max_years") and not getattr(self, name)):
                raise LedgerError(f"parameter {name} out of range", "malformed")
        if self.name_commit_max <= self.name_commit_min:
            raise LedgerError("name_commit_max must exceed name_commit_min", "malformed")
        if not 0 < self.max_cheque_uploaders <= 1024:
            raise LedgerError("max_cheque_uploaders must be 1..1024", "malformed")

    def to_wire(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if _NAMES.get(k) != v}

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
                **{k: fields.get_int(m, k, "params") for k in _NAMES if k in m},
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
