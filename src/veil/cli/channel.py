"""`veil channel open|list|cheque|close`: payment channels from this wallet.

A channel locks a deposit for one payee (a node). The payer hands the payee cumulative
cheques off-ledger (`veil channel cheque`, or the client during downloads); the payee closes
with the latest cheque at any time; the payer closes at any time with the payee's consent to
its latest cheque, or alone only after expiry, then waits out the challenge window (in which the
payee can still settle) and finalizes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import click

from veil.client.channel_close import Consent, ask_consent, close_tx, payee_nodes
from veil.client.channels import PayerChannels
from veil.client.ledger_client import LedgerClient, parse_endpoints
from veil.client.network import Network, NodeInfo, load_network
from veil.crypto.sign import SigningKey
from veil.errors import LedgerError, UsageError, VeilError
from veil.format.textparse import parse_size
from veil.ledger import tx as txm
from veil.ledger.amount import parse_amount
from veil.ledger.cheque import Cheque, decode_cheque
from veil.ledger.state import CLOSING, OPEN, Channel, channel_id

from .common import human
from .jsonout import channel_row, emit, json_option
from .ledger_opts import (
    addr_text,
    connect,
    money,
    parse_addr,
    parse_duration,
    unlock,
    validator_option,
    wallet_option,
    when,
)
from .ledger_opts import wallet_path as resolve_wallet


def _settle(key: SigningKey, chain: str, fee: int, cid: bytes, chq: Cheque | None, nonce: int) -> bytes:
    return txm.channel_settle(key, chain, nonce, fee, cid, chq, True)


def _op(fn: Callable[[SigningKey, str, int, int, bytes], bytes], key: SigningKey, chain: str, fee: int, cid: bytes,
        nonce: int) -> bytes:  # fmt: skip
    return fn(key, chain, nonce, fee, cid)


def _cid(text: str) -> bytes:
    try:
        b = bytes.fromhex(text.strip())
    except ValueError:
        b = b""
    if len(b) != 32:
        raise UsageError(f"bad channel id {text!r}: 64 hex characters (see `veil channel list`)")
    return b


@click.group()
def channel() -> None:
    """Payment channels: pay a node per block off-ledger, settle once."""


@channel.command("open")
@click.argument("payee")
@click.argument("deposit")
@click.option("--expires-in", default="7d", show_default=True, help="Lifetime (e.g. 12h, 7d).")
@wallet_option
@validator_option
def open_cmd(
    payee: str, deposit: str, expires_in: str, wallet_path: Path | None, validator: str | None, network_path: Path | None
) -> None:
    """Lock DEPOSIT for PAYEE; prints the channel id."""
    to = parse_addr(payee)
    amount = parse_amount(deposit)
    life = parse_duration(expires_in)
    w = unlock(wallet_path)
    c = connect(validator, network_path)
    try:
        params = c.genesis().params
        expires = int(c.info()["now"]) + life
        txid, nonce = c.submit_with_nonce(
            w.key, lambda n: txm.channel_open(w.key, params.chain_id, n, params.min_fee, to, amount, expires))
        st = c.wait_committed(txid)
        cid = channel_id(w.address, nonce)
        ch = c.channel(cid)
        if ch is None:
            raise LedgerError("the channel was opened but is not visible; check `veil channel list`", "unknown_channel")
        book = PayerChannels(w.channels_path, w.key)
        book.record(cid, params.chain_id, ch)
        book.close()
    finally:
        c.close()
    click.echo(f"channel {cid.hex()} open in block {st['height']}: {money(amount)} to {payee}, expires {when(expires)}")


@channel.command("list")
@json_option
@wallet_option
@validator_option
def list_cmd(as_json: bool, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Open channels this wallet pays into or is paid from."""
    from veil.client.wallet import wallet_address

    addr = wallet_address(resolve_wallet(wallet_path))
    c = connect(validator, network_path)
    try:
        chans = c.account(addr)["channels"]
    finally:
        c.close()
    if as_json:
        emit({"address": addr_text(addr), "channels": [channel_row(cid, ch, addr) for cid, ch in chans]})
        return
    if not chans:
        click.echo("no open channels")
    for cid, ch in chans:
        mine = ch.payer == addr
        other = addr_text(ch.payee if mine else ch.payer)
        state = f"closing, final after {when(ch.close_at)}" if ch.status == CLOSING else f"expires {when(ch.expires)}"
        click.echo(
            f"{cid.hex()}  {'to' if mine else 'from'} {other}\n"
            f"    deposit {money(ch.deposit)} locked, {money(ch.paid)} settled, {human(ch.free_bytes)} free settled; {state}"
        )


@channel.command()
@click.argument("channel_id_hex", metavar="ID")
@click.argument("amount")
@click.option("--free-bytes", default="0", help="Free-allowance bytes this cheque adds (e.g. 50MB).")
@click.option("--paid-bytes", default="0", help="Paid bytes this cheque adds (bookkeeping).")
@click.option("--uploader", default=None, help="Uploader address owed a share of AMOUNT.")
@wallet_option
def cheque(
    channel_id_hex: str, amount: str, free_bytes: str, paid_bytes: str, uploader: str | None, wallet_path: Path | None
) -> None:
    """Sign the next cumulative cheque adding AMOUNT; prints it as hex for the payee."""
    cid = _cid(channel_id_hex)
    w = unlock(wallet_path)
    book = PayerChannels(w.channels_path, w.key)
    try:
        up = parse_addr(uploader) if uploader else None
        c = book.pay(cid, parse_amount(amount), parse_size(free_bytes), parse_size(paid_bytes), up)
    finally:
        book.close()
    click.echo(c.raw.hex())


@channel.command()
@click.argument("channel_id_hex", metavar="ID")
@click.option("--cheque", "cheque_hex", default=None, help="Payee: the payer's latest cheque (hex) to settle with.")
@click.option("--node", "node_spec", default=None, metavar="NODEID@HOST:PORT",
              help="Payer: the payee node to ask for its consent (default: found from its ledger registration through the network file or the DHT).")
@click.option("--unilateral", is_flag=True, help="Payer: do not ask the payee; close alone (after expiry only).")
@wallet_option
@validator_option
def close(
    channel_id_hex: str, cheque_hex: str | None, node_spec: str | None, unilateral: bool, wallet_path: Path | None,
    validator: str | None, network_path: Path | None,
) -> None:  # fmt: skip
    """Close channel ID.

    As payee: settles the given cheque (if any) and closes at once, refunding the payer the rest.

    As payer: asks the payee node for its consent (its latest cheque, signed over closing at exactly
    that cheque; the node takes no more cheques on the channel) and closes at once: the payee is
    paid that cheque and the rest of the deposit comes back. If the payee does not answer, and the
    channel has expired, starts a unilateral close instead; once the challenge window is over, run
    it again to get the deposit back.
    """
    cid = _cid(channel_id_hex)
    w = unlock(wallet_path)
    c = connect(validator, network_path)
    try:
        params = c.genesis().params
        ch = c.channel(cid)
        if ch is None:
            raise LedgerError("no such open channel", "unknown_channel")
        fee = params.min_fee
        now = int(c.info()["now"])
        build: Callable[[int], bytes]
        notes: list[str] = []
        consent: Consent | None = None
        if ch.payee == w.address:
            chq = decode_cheque(bytes.fromhex(cheque_hex)) if cheque_hex else None
            build = functools.partial(_settle, w.key, params.chain_id, fee, cid, chq)
            done = "closed"
        elif ch.payer != w.address:
            raise UsageError("this wallet is neither the payer nor the payee of that channel")
        elif cheque_hex:
            raise UsageError("--cheque is for the payee; the payer closes without one")
        elif not unilateral and (consent := _consent(c, node_spec, network_path, params.chain_id, cid, ch, notes)):
            build = functools.partial(close_tx, w.key, params.chain_id, fee, cid, consent)
            paid = consent.cheque.amount - ch.paid if consent.cheque is not None else 0
            done = f"closed with the payee's consent (paid {money(paid)} more), deposit returned"
        elif ch.status == OPEN:
            if now < ch.expires:
                raise UsageError(
                    f"{notes[0] if notes else 'the payee did not consent'}; and the channel runs until "
                    f"{when(ch.expires)}: before that the payer can close only with the payee's consent"
                )
            build = functools.partial(_op, txm.channel_close_start, w.key, params.chain_id, fee, cid)
            done = f"closing: the payee may still settle until {when(now + params.challenge_seconds)}; run this again then"
        else:
            if now < ch.close_at:
                raise UsageError(f"the challenge window is open until {when(ch.close_at)}; run this again then")
            build = functools.partial(_op, txm.channel_finalize, w.key, params.chain_id, fee, cid)
            done = "closed, deposit returned"
        try:
            st = c.wait_committed(c.submit_with_nonce(w.key, build)[0])
        except LedgerError as e:
            # The node settled its consented cheque meanwhile: its consent now is to the settled state.
            again = c.channel(cid) if consent is not None and e.code == "stale_cheque" else None
            if again is None or not (consent := _consent(c, node_spec, network_path, params.chain_id, cid, again, notes)):
                raise
            build = functools.partial(close_tx, w.key, params.chain_id, fee, cid, consent)
            st = c.wait_committed(c.submit_with_nonce(w.key, build)[0])
        if done.startswith("closed"):
            book = PayerChannels(w.channels_path, w.key)
            book.forget(cid)
            book.close()
    finally:
        c.close()
    for n in notes:
        click.echo(f"veil: note: {n}", err=True)
    click.echo(f"channel {cid.hex()[:16]} {done} (block {st['height']})")


def _consent(ledger: LedgerClient, node_spec: str | None, network_path: Path | None, chain: str, cid: bytes,
             ch: Channel, notes: list[str]) -> Consent | None:  # fmt: skip
    """The payee's consent to a cooperative close, or None (why goes to ``notes``)."""
    net: Network | None = None
    try:
        if node_spec:
            host, port, nid = parse_endpoints(node_spec)[0]
            net = Network([NodeInfo(host, port, nid)])
            nodes = net.nodes
        else:
            net = load_network(network_path)
            nodes = payee_nodes(net, ledger, ch.payee)
        return ask_consent(net, nodes, chain, cid, ch)
    except VeilError as e:
        notes.append(str(e))
        return None
    finally:
        if net is not None:
            net.close()


commands = [channel]
