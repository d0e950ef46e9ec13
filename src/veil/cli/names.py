"""`veil name register|renew|transfer|set|unset|resolve|list|sub|bid|claim|auction|price`:
names on the ledger (docs/specs/names.md). Every lookup is checked against a block signed by a
majority of the validators this client pins; nothing a single validator says is taken on trust."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from veil.client.names import NameClient, default_floor_path, is_name, registrable
from veil.errors import UsageError
from veil.format.caps import parse_read_cap
from veil.format.folder_caps import FolderVerifyCap, parse_folder_cap, read_cap_of
from veil.format.remote_text import clean
from veil.ledger.address import decode_address
from veil.ledger.amount import parse_amount
from veil.ledger.names import FILE, NODE, SITE, TEXT, WALLET, NameRec, parse_name

from .ledger_opts import addr_text, connect, money, unlock, validator_option, wallet_option, when
from .ledger_opts import wallet_path as resolve_wallet

WARN_DAYS = 30


@contextmanager
def names_client(validator: str | None, network_path: Path | None) -> Iterator[NameClient]:
    c = connect(validator, network_path)
    try:
        yield NameClient(c, default_floor_path())
    finally:
        c.close()


def address_or_name(nc: NameClient, text: str) -> bytes:
    """An address (vb1…), or a name whose wallet record is checked against a signed block."""
    return nc.wallet_of(text) if is_name(text) or "." in text else decode_address(text)


@click.group()
def name() -> None:
    """Human-readable names (alice.veil) owned on the ledger: register, point at sites, files,
    wallets and nodes, delegate subnames, bid for short ones."""


@name.command()
@click.argument("name_")
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 100), help="Years to pay for.")
@wallet_option
@validator_option
def register(name_: str, years: int, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Register NAME (5+ characters) by commit-reveal: commit, wait the network's delay, reveal."""
    w = unlock(wallet_path)
    n = registrable(name_)
    with names_client(validator, network_path) as nc:
        res = nc.resolve(n)
        if res.status == "active":
            raise UsageError(f"{n}.veil is taken (expires {when(res.expires)})")
        grace_end = res.expires + nc.ledger.genesis().params.name_grace
        if res.status == "expired" and max(res.time, int(nc.ledger.info().get("now", 0))) < grace_end:
            raise UsageError(f"{n}.veil expired but is in its grace period (only its owner may renew it) until "
                             f"{when(grace_end)}")  # fmt: skip
        click.echo(f"{n}.veil: {money(nc.price(n, years))} for {years} year{'s' if years > 1 else ''}; committing…",
                   err=True)  # fmt: skip
        told: list[bool] = []

        def waiting(left: float) -> None:
            if not told:
                click.echo(f"waiting {left:.0f} s before the reveal (so nobody can front-run it)…", err=True)
                told.append(True)

        expires = nc.register(w.key, n, years, waiting)
    click.echo(f"registered {n}.veil to {w.address_text} until {when(expires)}")


@name.command()
@click.argument("name_")
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 100))
@wallet_option
@validator_option
def renew(name_: str, years: int, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Pay NAME for more years (the owner only, also in the grace period after it expired)."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        height = nc.renew(w.key, name_, years)
        rec = dict(nc.names_of(w.address)).get(parse_name(name_))
    click.echo(f"renewed {parse_name(name_)}.veil until {when(rec.expires) if rec else '?'} (block {height})")


@name.command()
@click.argument("name_")
@click.argument("to")
@wallet_option
@validator_option
def transfer(name_: str, to: str, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Give NAME to the account TO (an address, or a name with a wallet record). Records stay."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        dest = address_or_name(nc, to)
        height = nc.transfer(w.key, name_, dest)
    click.echo(f"{parse_name(name_)}.veil now belongs to {addr_text(dest)} (block {height})")


def _record_value(kind: str, args: tuple[str, ...], nc: NameClient) -> tuple[str | bytes, str | None]:
    want = 2 if kind == TEXT else 1
    if len(args) != want:
        raise UsageError(f"`set NAME {kind}` takes {'KEY VALUE' if kind == TEXT else 'one value'}")
    if kind == TEXT:
        return args[1], args[0]
    v = args[0]
    if kind == SITE:
        fc = parse_folder_cap(v)
        if isinstance(fc, FolderVerifyCap):
            raise UsageError("a site record needs a folder read cap (veil:fr1:…) or write cap, not a verify cap")
        return read_cap_of(fc).to_string(), None  # a write cap is turned into its read cap: never published
    if kind == FILE:
        return parse_read_cap(v).to_string(), None
    if kind == WALLET:
        return address_or_name(nc, v), None
    try:
        nid = bytes.fromhex(v)
    except ValueError:
        nid = b""
    if len(nid) != 32:
        raise UsageError("a node record holds a node id: 64 hex characters")
    return nid, None


KINDS = click.Choice([SITE, FILE, WALLET, NODE, TEXT])


@name.command("set")
@click.argument("name_")
@click.argument("kind", type=KINDS)
@click.argument("values", nargs=-1, required=True)
@wallet_option
@validator_option
def set_cmd(name_: str, kind: str, values: tuple[str, ...], wallet_path: Path | None, validator: str | None,
            network_path: Path | None) -> None:  # fmt: skip
    """Set a record: site FOLDERCAP | file CAP | wallet ADDR | node NODEID | text KEY VALUE."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        value, key = _record_value(kind, values, nc)
        height = nc.set_record(w.key, name_, kind, value, key)
    click.echo(f"{parse_name(name_)}.veil {kind}{' ' + key if key else ''} set (block {height})")


@name.command()
@click.argument("name_")
@click.argument("kind", type=KINDS)
@click.argument("key", required=False)
@wallet_option
@validator_option
def unset(name_: str, kind: str, key: str | None, wallet_path: Path | None, validator: str | None,
          network_path: Path | None) -> None:  # fmt: skip
    """Remove a record (text records by KEY)."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        height = nc.unset_record(w.key, name_, kind, key)
    click.echo(f"{parse_name(name_)}.veil {kind}{' ' + key if key else ''} removed (block {height})")


def _show(rk: str, v: str | bytes) -> str:
    if rk == WALLET and isinstance(v, bytes):
        return addr_text(v)
    return v.hex() if isinstance(v, bytes) else clean(v, 300)


@name.command()
@click.argument("name_")
@click.option("--json", "as_json", is_flag=True, help="Print the checked answer as JSON.")
@validator_option
def resolve(name_: str, as_json: bool, validator: str | None, network_path: Path | None) -> None:
    """Look NAME up and check the answer against a block signed by a majority of the validators."""
    with names_client(validator, network_path) as nc:
        res = nc.resolve(name_)
    rec = res.record
    if as_json:
        click.echo(json.dumps({"name": f"{res.name}.veil", "status": res.status, "height": res.height,
                               "block_time": res.time, "expires": res.expires or None,
                               "owner": addr_text(rec.owner) if rec else None,
                               "records": {k: _show(k, v) for k, v in rec.records} if rec else {}}, indent=2))  # fmt: skip
        return
    click.echo(f"name:     {res.name}.veil ({res.status}, proved at block {res.height})")
    if rec is None:
        return
    click.echo(f"owner:    {addr_text(rec.owner)}")
    if res.expires:
        click.echo(f"expires:  {when(res.expires)}")
    for k, v in rec.records:
        click.echo(f"{k + ':':<9} {_show(k, v)}")


def _days_left(rec: NameRec, now: float) -> float:
    return (rec.expires - now) / 86400


@name.command("list")
@click.option("--owner", default=None, help="Whose names (default: this wallet's).")
@wallet_option
@validator_option
def list_cmd(owner: str | None, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Your names with their expiry dates; warns about those expiring within 30 days."""
    from veil.client.wallet import wallet_address

    with names_client(validator, network_path) as nc:
        addr = decode_address(owner) if owner else wallet_address(resolve_wallet(wallet_path))
        rows = nc.names_of(addr)
        now = float(nc.ledger.info().get("now", time.time()))
        grace = nc.ledger.genesis().params.name_grace
    if not rows:
        click.echo("no names")
    for n, rec in rows:
        if not rec.expires:
            click.echo(f"{n + '.veil':<40} subname (lives as long as {n.split('.', 1)[1]}.veil)")
            continue
        left = _days_left(rec, now)
        state = f"expires {when(rec.expires)}"
        if left < 0:
            state = (f"EXPIRED {when(rec.expires)}; renew before {when(rec.expires + grace)} or lose it"
                     if -left * 86400 < grace else f"released {when(rec.expires + grace)}")
        click.echo(f"{n + '.veil':<40} {state}")
        if 0 <= left < WARN_DAYS:
            click.echo(f"warning: {n}.veil expires in {left:.0f} days: `veil name renew {n}`", err=True)


@name.command()
@click.argument("name_")
@click.argument("label")
@click.option("--owner", default=None, help="The subname's owner (an address or a name with a wallet record).")
@click.option("--remove", is_flag=True, help="Take the subname back.")
@wallet_option
@validator_option
def sub(name_: str, label: str, owner: str | None, remove: bool, wallet_path: Path | None, validator: str | None,
        network_path: Path | None) -> None:  # fmt: skip
    """Delegate LABEL.NAME to --owner (it then controls that subname, and only it), or --remove it."""
    if remove == (owner is not None):
        raise UsageError("give exactly one of --owner ADDR and --remove")
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        dest = None if owner is None else address_or_name(nc, owner)
        height = nc.delegate(w.key, name_, label, dest)
    full = f"{label}.{parse_name(name_)}.veil"
    click.echo(f"{full} {'removed' if dest is None else 'delegated to ' + addr_text(dest)} (block {height})")


@name.command()
@click.argument("name_")
@click.argument("amount")
@wallet_option
@validator_option
def bid(name_: str, amount: str, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Bid AMOUNT for a short NAME (4 characters or fewer); the first bid opens the auction."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        height = nc.bid(w.key, name_, parse_amount(amount))
        a = nc.auction(name_)
    end = f"; the auction ends {when(a.end)}" if a else ""
    click.echo(f"bid {money(parse_amount(amount))} for {parse_name(name_)}.veil (block {height}){end}")


@name.command()
@click.argument("name_")
@wallet_option
@validator_option
def claim(name_: str, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Settle NAME's finished auction: the name goes to the highest bidder, the bid is burned."""
    w = unlock(wallet_path)
    with names_client(validator, network_path) as nc:
        height = nc.claim(w.key, name_)
    click.echo(f"auction of {parse_name(name_)}.veil settled (block {height})")


@name.command()
@click.argument("name_")
@validator_option
def auction(name_: str, validator: str | None, network_path: Path | None) -> None:
    """Show NAME's auction: the highest bid, who made it and when it ends."""
    with names_client(validator, network_path) as nc:
        a = nc.auction(name_)
    if a is None:
        raise UsageError(f"no auction of {parse_name(name_)}.veil")
    click.echo(f"highest bid: {money(a.bid)} by {addr_text(a.bidder)}; ends {when(a.end)}")


@name.command()
@click.argument("name_")
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 100))
@validator_option
def price(name_: str, years: int, validator: str | None, network_path: Path | None) -> None:
    """What registering NAME costs (for a short name: the least first bid)."""
    with names_client(validator, network_path) as nc:
        click.echo(f"{parse_name(name_)}.veil: {money(nc.price(name_, years))} for {years} year{'s' if years > 1 else ''}")


commands = [name]
