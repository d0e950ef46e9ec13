"""Rules for names (docs/specs/names.md): commit-reveal registration, renewal with a grace
period, transfer, records, subnames, and auctions of short names.

Every handler checks every rule first and writes only when all held, so a rejected transaction
changes nothing. Time is the block's (``env.time``): deterministic on every validator, and a
test drives it with a manual clock. Registration and renewal fees go to the allowance pool (like
every fee); the winning bid of an auction is burned (``supply.burned``). Pure; the dispatcher is
``rules.apply_tx``.
"""

from __future__ import annotations

from veil.errors import LedgerError
from veil.ledger import tx as txm
from veil.ledger.amount import format_amount
from veil.ledger.names import (
    AUCTION_MAX_LEN,
    MAX_RECORD_BYTES,
    MAX_RECORDS,
    Auction,
    Commit,
    NameRec,
    commit_hash,
    live,
    min_next_bid,
    parent_of,
    yearly_fee,
)
from veil.ledger.rules_common import charge, credit, debit, take_fee, would_overflow
from veil.ledger.state import Account, BlockEnv, Overlay
from veil.ledger.tx import Tx


def _top_level(tx: Tx) -> str:
    if "." in tx.name:
        raise LedgerError(f"{tx.name!r} is a subname: its parent's owner delegates it (name_sub)", "bad_name")
    return tx.name


def _years(tx: Tx, env: BlockEnv) -> int:
    if not 1 <= tx.years <= env.params.name_max_years:
        raise LedgerError(f"years must be 1 to {env.params.name_max_years}", "bad_years")
    return tx.years


def _free(rec: NameRec | None, env: BlockEnv) -> bool:
    """A top-level name anyone may take: never registered, or past its expiry and grace."""
    return rec is None or env.time >= rec.expires + env.params.name_grace


def _in_force(ov: Overlay, name: str, env: BlockEnv) -> NameRec:
    """The name's record if it is in force now (a subname: while its parent's registration is)."""
    rec = ov.get_name(name)
    if rec is None:
        raise LedgerError(f"{name}.veil is not registered", "unknown_name")
    parent = parent_of(name)
    if not live(rec, ov.get_name(parent) if parent else None, env.time):
        raise LedgerError(f"{name}.veil has expired (renew it, or it is released after the grace period)",
                          "name_expired")  # fmt: skip
    return rec


def _owner(rec: NameRec, tx: Tx, name: str) -> None:
    if rec.owner != tx.sender:
        raise LedgerError(f"only the owner of {name}.veil may do that", "not_owner")


def _name_commit(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    old = ov.get_commit(tx.root)
    if old is not None and env.time <= old.time + env.params.name_commit_max:
        raise LedgerError("this commitment is already on the ledger", "commit_exists")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.commits[tx.root] = Commit(tx.sender, env.time)


def _name_register(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    p = env.params
    name = _top_level(tx)
    if len(name) <= AUCTION_MAX_LEN:
        raise LedgerError(f"names of {AUCTION_MAX_LEN} characters or fewer are sold by auction (name_bid)",
                          "auction_only")  # fmt: skip
    years = _years(tx, env)
    h = commit_hash(name, tx.sender, tx.salt)
    c = ov.get_commit(h)
    if c is None or c.sender != tx.sender:
        raise LedgerError("no commitment to this name, owner and salt: send name_commit first", "no_commit")
    if env.time < c.time + p.name_commit_min:
        raise LedgerError(f"the commitment is too new: reveal from {c.time + p.name_commit_min} on", "commit_too_new")
    if env.time > c.time + p.name_commit_max:
        raise LedgerError("the commitment is too old: commit again", "commit_expired")
    if not _free(ov.get_name(name), env):
        raise LedgerError(f"{name}.veil is taken", "name_taken")
    fee = yearly_fee(p, len(name)) * years
    charge(ov, tx, env, sender, fee)
    debit(ov, tx, env, sender, fee)
    take_fee(ov, fee)
    ov.commits[h] = None
    ov.names[name] = NameRec(tx.sender, env.time + years * p.name_year, env.time)


def _name_renew(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    p = env.params
    name = _top_level(tx)
    rec = ov.get_name(name)
    if rec is None:
        raise LedgerError(f"{name}.veil is not registered", "unknown_name")
    _owner(rec, tx, name)
    if _free(rec, env):
        raise LedgerError(f"{name}.veil was released at the end of its grace period: register it again",
                          "name_released")  # fmt: skip
    years = _years(tx, env)
    expires = rec.expires + years * p.name_year
    if expires > env.time + p.name_max_years * p.name_year:
        raise LedgerError(f"a name may be paid at most {p.name_max_years} years ahead", "too_long")
    fee = yearly_fee(p, len(name)) * years
    charge(ov, tx, env, sender, fee)
    debit(ov, tx, env, sender, fee)
    take_fee(ov, fee)
    ov.names[name] = rec._replace(expires=expires)


def _name_transfer(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    rec = _in_force(ov, tx.name, env)
    _owner(rec, tx, tx.name)
    if tx.to == rec.owner:
        raise LedgerError("the name already belongs to that account", "bad_transfer")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.names[tx.name] = rec._replace(owner=tx.to)


def _name_set(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    rec = _in_force(ov, tx.name, env)
    _owner(rec, tx, tx.name)
    upd = rec.with_record(tx.rkey, tx.rvalue)
    if len(upd.records) > MAX_RECORDS or len(upd.encode()) > MAX_RECORD_BYTES:
        raise LedgerError(f"a name holds at most {MAX_RECORDS} records and {MAX_RECORD_BYTES} bytes of them",
                          "too_many_records")  # fmt: skip
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.names[tx.name] = upd


def _name_unset(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    rec = _in_force(ov, tx.name, env)
    _owner(rec, tx, tx.name)
    if rec.get(tx.rkey) is None:
        raise LedgerError(f"{tx.name}.veil has no {tx.rkey} record", "no_record")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.names[tx.name] = rec.with_record(tx.rkey, None)


def _name_sub(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    parent = parent_of(tx.name)
    if parent is None:
        raise LedgerError("name_sub takes a subname: label.name", "bad_name")
    prec = _in_force(ov, parent, env)
    _owner(prec, tx, parent)
    old = ov.get_name(tx.name)
    if not live(old, prec, env.time):
        old = None
    if not tx.to:
        if old is None:
            raise LedgerError(f"{tx.name}.veil is not delegated", "unknown_name")
        new: NameRec | None = None
    elif old is not None and old.owner == tx.to:
        raise LedgerError("the subname already belongs to that account", "bad_transfer")
    else:  # a new owner starts with no records: the old owner's do not follow the subname
        new = NameRec(tx.to, 0, env.time, prec.since)
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    ov.names[tx.name] = new


def _name_bid(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    p = env.params
    name = _top_level(tx)
    if len(name) > AUCTION_MAX_LEN:
        raise LedgerError(f"only names of {AUCTION_MAX_LEN} characters or fewer are auctioned; register this one",
                          "not_auction")  # fmt: skip
    if not _free(ov.get_name(name), env):
        raise LedgerError(f"{name}.veil is taken", "name_taken")
    a = ov.get_auction(name)
    if a is not None and env.time >= a.end:
        raise LedgerError(f"the auction of {name}.veil is over: settle it with name_claim", "auction_over")
    least = min_next_bid(p, len(name), a.bid if a else 0)
    if tx.amount < least:
        raise LedgerError(f"a bid on {name}.veil must be at least {format_amount(least)}", "bid_too_low")
    mine = a is not None and a.bidder == tx.sender
    held = a.bid if a is not None and mine else 0  # raising one's own bid locks only the difference
    charge(ov, tx, env, sender, tx.amount - held)
    if a is not None and not mine and would_overflow(ov, a.bidder, a.bid):
        raise LedgerError("the refund would overflow the outbid account", "bad_amount")
    debit(ov, tx, env, sender, tx.amount - held)
    if a is not None and not mine:
        credit(ov, a.bidder, a.bid)  # the outbid bidder gets the bid back at once
    if a is None:
        end = env.time + p.name_auction_seconds
    else:  # a late bid gives the others time to answer (no sniping)
        end = max(a.end, env.time + p.name_auction_extend)
    ov.auctions[name] = Auction(tx.sender, tx.amount, end, a.started if a else env.time)


def _name_claim(ov: Overlay, tx: Tx, env: BlockEnv, sender: Account) -> None:
    name = _top_level(tx)
    a = ov.get_auction(name)
    if a is None:
        raise LedgerError(f"no auction of {name}.veil", "no_auction")
    if env.time < a.end:
        raise LedgerError(f"the auction of {name}.veil runs until {a.end}", "auction_running")
    charge(ov, tx, env, sender, 0)
    debit(ov, tx, env, sender, 0)
    s = ov.get_supply()
    ov.supply = s._replace(burned=s.burned + a.bid)  # the winning bid is burned
    ov.auctions[name] = None
    ov.names[name] = NameRec(a.bidder, a.end + env.params.name_year, env.time)


HANDLERS = {
    txm.NAME_COMMIT: _name_commit,
    txm.NAME_REGISTER: _name_register,
    txm.NAME_RENEW: _name_renew,
    txm.NAME_TRANSFER: _name_transfer,
    txm.NAME_SET: _name_set,
    txm.NAME_UNSET: _name_unset,
    txm.NAME_SUB: _name_sub,
    txm.NAME_BID: _name_bid,
    txm.NAME_CLAIM: _name_claim,
}
