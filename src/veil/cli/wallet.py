"""`veil wallet create|address|balance|send|history`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from veil.client.names import NameClient, default_floor_path, is_name
from veil.client.wallet import create_wallet, export_wallet, import_wallet, wallet_address
from veil.durable import write_atomic
from veil.errors import UsageError
from veil.ledger import tx as txm
from veil.ledger.amount import parse_amount
from veil.ledger.state import CLOSING
from veil.ledger.tx import decode_tx

from .common import human
from .jsonout import channel_row, emit, json_option
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
    """Your Bitcache account: its key (encrypted under a passphrase), balance and payments.

    The wallet file is --wallet, else $VEIL_WALLET, else $VEIL_HOME/wallet.

    The key file is the web wallet's too (a gateway's /wallet page): move a key between them
    with `veil wallet export` and `veil wallet import`."""


@wallet.command("create", short_help="Make a new account key, encrypted under a passphrase.")
@wallet_option
def create_cmd(wallet_path: Path | None) -> None:
    """Make a new account key, stored encrypted under a passphrase ($VEIL_PASSPHRASE for scripts)."""
    path = resolve_wallet(wallet_path)
    w = create_wallet(path, passphrase(confirm=True))
    click.echo(f"wallet created at {path}")
    click.echo(f"address: {w.address_text}")


@wallet.command("import", short_help="Use a key file (exported by the CLI or a web wallet).")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wallet_option
def import_cmd(key_file: Path, wallet_path: Path | None) -> None:
    """Use KEY_FILE (from `veil wallet export` or a web wallet's "Export key file") as this wallet.

    The file must open with its passphrase ($VEIL_PASSPHRASE for scripts); it keeps that passphrase.
    An existing wallet is never overwritten."""
    path = resolve_wallet(wallet_path)
    w = import_wallet(key_file, path, passphrase())
    click.echo(f"wallet imported to {path}")
    click.echo(f"address: {w.address_text}")


@wallet.command("export", short_help="Write the key file (still encrypted) for a web wallet.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=True,
              help="Where to write the key file ('-' for stdout).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@wallet_option
def export_cmd(output: Path, force: bool, wallet_path: Path | None) -> None:
    """Write the wallet's key file, still encrypted under its passphrase, for a web wallet's
    "Import a key file" or `veil wallet import` elsewhere. Keep it as safe as the wallet."""
    raw = export_wallet(resolve_wallet(wallet_path))
    if str(output) == "-":
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        return
    if output.exists() and not force:
        raise UsageError(f"{output} exists; use --force to replace it")
    write_atomic(output, raw, 0o600)
    click.echo(f"key file written to {output} (encrypted under the wallet's passphrase)", err=True)


@wallet.command()
@wallet_option
def address(wallet_path: Path | None) -> None:
    """Print this wallet's address (no passphrase needed)."""
    click.echo(addr_text(wallet_address(resolve_wallet(wallet_path))))


@wallet.command(short_help="Balance, allowance left and open channels.")
@json_option
@wallet_option
@validator_option
def balance(as_json: bool, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Balance, free download allowance left this epoch, and open channels."""
    addr = wallet_address(resolve_wallet(wallet_path))
    c = connect(validator, network_path)
    try:
        a = c.account(addr)
    finally:
        c.close()
    if as_json:
        emit({"address": addr_text(addr), "balance": a["balance"], "allowance_left": a["allowance_left"],
              "epoch_ends": a["epoch_ends"], "channels": [channel_row(cid, ch, addr) for cid, ch in a["channels"]]})
        return
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


@wallet.command(short_help="Pay AMOUNT VEIL to an address or a name (alice.veil).")
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
    """Pay AMOUNT (in VEIL, for example 12.5) to TO: an address, or a name (alice.veil) whose wallet
    record is checked against a block signed by the validators."""
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


def _tx_row(r: dict[str, object], me: bytes) -> dict[str, object]:
    raw = r["tx"]
    assert isinstance(raw, bytes)
    t = decode_tx(raw)
    return {"txid": t.txid.hex(), "height": r.get("height"), "kind": t.kind, "from": addr_text(t.sender),
            "to": addr_text(t.to) if t.to else None, "amount": t.amount, "fee": t.fee, "nonce": t.nonce,
            "memo": t.memo or None, "channel": t.channel.hex() if t.channel else None,
            "text": describe(raw, me)}  # fmt: skip


@wallet.command()
@click.option("--limit", default=20, show_default=True)
@json_option
@wallet_option
@validator_option
def history(limit: int, as_json: bool, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """This account's latest transactions, newest first."""
    addr = wallet_address(resolve_wallet(wallet_path))
    c = connect(validator, network_path)
    try:
        rows = c.history(addr, limit)
    finally:
        c.close()
    if as_json:
        emit({"address": addr_text(addr), "transactions": [_tx_row(r, addr) for r in rows]})
        return
    if not rows:
        click.echo("no transactions yet")
    for r in rows:
        where = f"block {r['height']:>6}" if r.get("height") is not None else "pending     "
        click.echo(f"{where}  {describe(r['tx'], addr)}")


commands = [wallet]
