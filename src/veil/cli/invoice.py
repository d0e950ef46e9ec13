"""`veil invoice create|list|show` (ask to be paid) and `veil pay URI` (pay what was asked)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import segno

from veil.client.invoices import InvoiceBook, book_path, invoice_payments, pay_request
from veil.client.network import default_network_path, load_network
from veil.client.wallet import wallet_address
from veil.errors import UsageError, VeilError
from veil.ledger.amount import parse_amount
from veil.ledger.invoice import PaymentRequest, Settlement, parse_payment_uri, settle

from .ledger_opts import (
    addr_text,
    connect,
    money,
    parse_duration,
    unlock,
    validator_option,
    wallet_option,
    when,
)
from .ledger_opts import wallet_path as resolve_wallet

DEFAULT_EXPIRY = "24h"


@click.group()
def invoice() -> None:
    """Ask to be paid: invoices with a veil:pay URI and QR code, settled from the ledger."""


def _book(wallet_path: Path | None) -> tuple[InvoiceBook, bytes]:
    path = resolve_wallet(wallet_path)
    payee = wallet_address(path)  # no passphrase needed: an invoice only names the address
    return InvoiceBook(book_path(path)), payee


def gateway_of(network_path: Path | None) -> str | None:
    """The network file's gateway (the devnet's by default), if one is known."""
    try:
        gw = load_network(network_path or default_network_path()).gateway
    except (OSError, VeilError, ValueError):
        return None
    return gw.rstrip("/") if gw else None


def _qr_out(uri: str, qr: Path | None, terminal: bool) -> None:
    code = segno.make(uri, error="m")
    if qr is not None:
        if qr.suffix.lower() not in (".png", ".svg"):
            raise UsageError("--qr writes a .png or .svg file")
        code.save(str(qr), scale=6, border=4)
        click.echo(f"qr:      {qr}")
    if terminal:
        code.terminal(compact=True)


@invoice.command("create")
@click.option("--amount", required=True, help="What to ask for, e.g. 5 or 0.25 (VEIL).")
@click.option("--memo", default=None, help="Shown to the payer and carried on the ledger (at most 256 characters).")
@click.option("--expires", default=DEFAULT_EXPIRY, show_default=True, help="How long it can be paid: 90s, 15m, 1h, 7d.")
@click.option("--qr", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the QR code to FILE.png or FILE.svg.")
@click.option("--no-qr", is_flag=True, help="Do not print the QR code in the terminal.")
@wallet_option
@click.option("--network", "network_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Network file, for the gateway link (default: the devnet's).")
def create_cmd(amount: str, memo: str | None, expires: str, qr: Path | None, no_qr: bool, wallet_path: Path | None,
               network_path: Path | None) -> None:  # fmt: skip
    """A new invoice to this wallet's address: prints its id, its veil:pay URI and a QR code."""
    value = parse_amount(amount)
    if value <= 0:
        raise UsageError("--amount must be more than 0")
    book, payee = _book(wallet_path)
    try:
        req, _ = book.create(payee, value, memo, parse_duration(expires))
    finally:
        book.close()
    uri = req.uri()
    click.echo(f"invoice: {req.invoice_text}")
    click.echo(f"amount:  {money(req.amount)}")
    click.echo(f"expires: {when(req.expires)}")
    click.echo(f"uri:     {uri}")
    gw = gateway_of(network_path)
    if gw:
        click.echo(f"link:    {gw}/wallet#{uri}")
        click.echo(f"checkout: {gw}/pay/{req.invoice_text}#{uri}")
    _qr_out(uri, qr, not no_qr)


def _settled(reqs: list[PaymentRequest], payee: bytes, validator: str | None, network_path: Path | None) -> dict[bytes, Settlement]:
    c = connect(validator, network_path)
    try:
        pays = invoice_payments(c, payee, {r.invoice for r in reqs})
    finally:
        c.close()
    now = time.time()
    return {r.invoice: settle(r.amount, r.expires, pays[r.invoice], now) for r in reqs}


def _row(req: PaymentRequest, created: int, s: Settlement) -> dict[str, Any]:
    return {"id": req.invoice_text, "status": s.status, "amount": req.amount, "received": s.received, "late": s.late,
            "credit": s.credit, "memo": req.memo, "created": created, "expires": req.expires, "uri": req.uri(),
            "payments": [{"tx": p.txid.hex(), "from": addr_text(p.sender), "amount": p.amount, "height": p.height,
                          "time": p.time} for p in s.payments]}  # fmt: skip


@invoice.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per invoice (amounts in smallest units).")
@wallet_option
@validator_option
def list_cmd(as_json: bool, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """This wallet's invoices, newest first, each settled from the ledger: open, paid, underpaid,
    overpaid or expired."""
    book, payee = _book(wallet_path)
    try:
        rows = book.all()
    finally:
        book.close()
    if not rows:
        click.echo("no invoices yet (make one with `veil invoice create --amount 5`)")
        return
    st = _settled([r for r, _ in rows], payee, validator, network_path)
    for req, created in rows:
        s = st[req.invoice]
        if as_json:
            click.echo(json.dumps(_row(req, created, s)))
            continue
        memo = f"  {req.memo}" if req.memo else ""
        click.echo(f"{req.invoice_text}  {s.status:<9}  {money(s.received)} of {money(req.amount)}"
                   f"{'  credit ' + money(s.credit) if s.credit else ''}  expires {when(req.expires)}{memo}")  # fmt: skip


@invoice.command("show")
@click.argument("invoice_id")
@wallet_option
@validator_option
def show_cmd(invoice_id: str, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """One invoice (by id or a unique prefix of it): its status, payments and refundable credit."""
    book, payee = _book(wallet_path)
    try:
        req, created = book.get(invoice_id)
    finally:
        book.close()
    s = _settled([req], payee, validator, network_path)[req.invoice]
    click.echo(f"invoice:  {req.invoice_text}")
    click.echo(f"status:   {s.status}{' (expired)' if s.status == 'underpaid' and req.expired(time.time()) else ''}")
    click.echo(f"amount:   {money(req.amount)}")
    click.echo(f"received: {money(s.received)}" + (f" (+ {money(s.late)} after the expiry)" if s.late else ""))
    if s.credit:
        click.echo(f"credit:   {money(s.credit)} to refund to the payers")
    if req.memo:
        click.echo(f"memo:     {req.memo}")
    click.echo(f"created:  {when(created)}")
    click.echo(f"expires:  {when(req.expires)}")
    click.echo(f"uri:      {req.uri()}")
    for p in s.payments:
        late = "  (late)" if p.time > req.expires else ""
        click.echo(f"payment:  {money(p.amount)} from {addr_text(p.sender)[:20]}… in block {p.height} (tx {p.txid.hex()[:16]}){late}")


@click.command("pay")
@click.argument("uri")
@click.option("--fee", default=None, help="Fee (default: the network minimum).")
@wallet_option
@validator_option
def pay(uri: str, fee: str | None, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Pay a veil:pay URI (from `veil invoice create`, a checkout page or a QR code).

    The URI is checked first (version, the payee's address checksum, its own checksum, expiry):
    an altered or expired request is refused and nothing is paid."""
    req = parse_payment_uri(uri)
    if req.expired(time.time()):
        raise UsageError(f"this payment request expired at {when(req.expires)}; ask the payee for a new one")
    w = unlock(wallet_path)
    c = connect(validator, network_path)
    try:
        txid, height = pay_request(c, w, req, parse_amount(fee) if fee is not None else None)
    finally:
        c.close()
    memo = f" ({req.memo})" if req.memo else ""
    click.echo(f"paid {money(req.amount)} to {addr_text(req.payee)} for invoice {req.invoice_text}{memo} "
               f"in block {height} (tx {txid.hex()})")  # fmt: skip


commands = [invoice, pay]
