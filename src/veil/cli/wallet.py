"""`veil wallet create|address|balance|send|history`."""

from __future__ import annotations

from pathlib import Path

import click

from veil.client.names import NameClient, default_floor_path, is_name
from veil.client.wallet import create_wallet, wallet_address
from veil.ledger import tx as txm
from veil.ledger.amount import parse_amount
from veil.ledger.state import CLOSING
from veil.ledger.tx import decode_tx

from .common import human
from .ledger_opts import (
    addr_text,
    connect,
    money,
    parse_addr,
    passphrase,
    unlock,
    validator_option,
    wallet_option,
    when,
)
from .ledger_opts import wallet_path as resolve_wallet


@click.group()
def wallet() -> None:
    """Your Bitcache account: its key (encrypted under a passphrase), balance and payments."""


@wallet.command("create")
@wallet_option
def create_cmd(wallet_path: Path | None) -> None:
    """Make a new account key, stored encrypted under a passphrase ($VEIL_PASSPHRASE for scripts)."""
    path = resolve_wallet(wallet_path)
    w = create_wallet(path, passphrase(confirm=True))
    click.echo(f"wallet created at {path}")
    click.echo(f"address: {w.address_text}")


@wallet.command()
@wallet_option
def address(wallet_path: Path | None) -> None:
    """Print this wallet's address (no passphrase needed)."""
    click.echo(addr_text(wallet_address(resolve_wallet(wallet_path))))


@wallet.command()
@wallet_option
@validator_option
def balance(wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Balance, free download allowance left this epoch, and open channels."""
    addr = wallet_address(resolve_wallet(wallet_path))
    c = connect(validator, network_path)
    try:
        a = c.account(addr)
    finally:
        c.close()
    click.echo(f"address:   {addr_text(addr)}")
    click.echo(f"balance:   {money(a['balance'])}")
    click.echo(f"allowance: {human(a['allowance_left'])} free downloads left (renews {when(a['epoch_ends'])})")
    chans = a["channels"]
    if not chans:
        click.echo("channels:  none open")
    for cid, ch in chans:
        role = "to" if ch.payer == addr else "from"
        state = "closing" if ch.status == CLOSING else "open"
        other = ch.payee if ch.payer == addr else ch.payer
        click.echo(f"channel {cid.hex()[:16]} {role} {addr_text(other)[:20]}… {money(ch.deposit)} locked, {state}")


@wallet.command()
@click.argument("to")
@click.argument("amount")
@click.option("--memo", default=None, help="A note stored with the payment (at most 256 characters).")
@click.option("--fee", default=None, help="Fee (default: the network minimum).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the payment is in a block.")
@wallet_option
@validator_option
def send(
    to: str, amount: str, memo: str | None, fee: str | None, wait: bool,
    wallet_path: Path | None, validator: str | None, network_path: Path | None,
) -> None:  # fmt: skip
    """Pay AMOUNT (e.g. 12.5) to TO: an address, or a name (alice.veil) whose wallet record is
    checked against a block signed by the validators."""
    value = parse_amount(amount)
    w = unlock(wallet_path)
    c = connect(validator, network_path)
    try:
        if is_name(to):
            dest = NameClient(c, default_floor_path()).wallet_of(to)
            click.echo(f"{to} -> {addr_text(dest)} (proved)", err=True)
        else:
            dest = parse_addr(to)
        params = c.genesis().params
        f = parse_amount(fee) if fee is not None else params.min_fee
        txid, _ = c.submit_with_nonce(w.key, lambda n: txm.transfer(w.key, params.chain_id, n, f, dest, value, memo))
        if wait:
            st = c.wait_committed(txid)
            click.echo(f"sent {money(value)} to {to} in block {st['height']} (tx {txid.hex()})")
        else:
            click.echo(f"submitted {money(value)} to {to} (tx {txid.hex()})")
    finally:
        c.close()


def describe(raw: bytes, me: bytes | None = None) -> str:
    """One line about a transaction, from ``me``'s point of view when given."""
    t = decode_tx(raw)
    who = addr_text(t.sender)[:16] + "…"
    if t.kind == txm.TRANSFER:
        if me is not None and t.to == me and t.sender != me:
            line = f"received {money(t.amount)} from {who}"
        else:
            line = f"{'sent' if me == t.sender else who + ' sent'} {money(t.amount)} to {addr_text(t.to)[:16]}…"
        return line + (f"  memo: {t.memo}" if t.memo else "")
    if t.kind == txm.CHANNEL_OPEN:
        return f"channel open to {addr_text(t.to)[:16]}…, deposit {money(t.amount)}"
    if t.kind == txm.CHANNEL_TOPUP:
        return f"channel {t.channel.hex()[:16]} top-up {money(t.amount)}"
    if t.kind in (txm.CHANNEL_SETTLE, txm.CHANNEL_CLOSE):
        c = t.cheque
        what = f"cheque #{c.seq}: {money(c.amount)} paid, {human(c.free_bytes)} free" if c else "no cheque"
        how = "closed with the payee's consent" if t.kind == txm.CHANNEL_CLOSE else "closed" if t.close else "settled"
        return f"channel {t.channel.hex()[:16]} {how} ({what})"
    if t.lease:
        return f"lease {t.lease.hex()[:16]} {t.kind.replace('lease_', '')}"
    if t.kind in txm.NAME_KINDS:
        what = f"{t.name}.veil" if t.name else "a name commitment"
        extra = f" {money(t.amount)}" if t.kind == txm.NAME_BID else f" {t.rkey}" if t.rkey else ""
        return f"{t.kind.replace('name_', 'name ')} {what}{extra}"
    if t.kind == txm.LEASE_OPEN:
        return f"lease open to {addr_text(t.to)[:16]}…, escrow {money(t.amount)}"
    return f"channel {t.channel.hex()[:16]} {t.kind.replace('channel_', '').replace('_', ' ')}"


@wallet.command()
@click.option("--limit", default=20, show_default=True)
@wallet_option
@validator_option
def history(limit: int, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """This account's latest transactions, newest first."""
    addr = wallet_address(resolve_wallet(wallet_path))
    c = connect(validator, network_path)
    try:
        rows = c.history(addr, limit)
    finally:
        c.close()
    if not rows:
        click.echo("no transactions yet")
    for r in rows:
        where = f"block {r['height']:>6}" if r.get("height") is not None else "pending     "
        click.echo(f"{where}  {describe(r['tx'], addr)}")


commands = [wallet]
