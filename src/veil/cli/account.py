"""`veil account`: allowance left and when it renews, balance, open channels, money spent on
downloads, and money earned as an uploader."""

from __future__ import annotations

from pathlib import Path

import click

from veil.client.channels import PayerChannels
from veil.client.ledger_client import LedgerClient
from veil.ledger import tx as txm
from veil.ledger.params import Params
from veil.ledger.state import CLOSING

from .common import human
from .jsonout import channel_row, emit, json_option
from .ledger_opts import addr_text, connect, money, unlock, validator_option, wallet_option, when
from .ledger_opts import wallet_path as resolve_wallet


def uploader_earnings(client: LedgerClient, addr: bytes, params: Params, limit: int = 1000) -> int:
    """What ``addr`` received as uploader: per channel, its share of the highest cumulative amount
    a settled cheque attributed to it (shares of cumulative amounts telescope)."""
    best: dict[bytes, int] = {}
    for row in client.history(addr, limit):
        if row.get("height") is None:
            continue
        t = txm.decode_tx(row["tx"])
        if t.kind not in (txm.CHANNEL_SETTLE, txm.CHANNEL_CLOSE) or t.cheque is None:
            continue
        for a, v in t.cheque.uploaders:
            if a == addr:
                best[t.channel] = max(best.get(t.channel, 0), v)
    return sum(params.uploader_share(v) for v in best.values())


def _cheques_total(wallet_path: Path | None) -> int:
    w = unlock(wallet_path)
    book = PayerChannels(w.channels_path, w.key)
    try:
        return sum(pc.amount for pc in book.all())
    finally:
        book.close()


@click.command()
@click.option("--unlock", "do_unlock", is_flag=True, help="Also show money promised in cheques (needs the passphrase).")
@json_option
@wallet_option
@validator_option
def account(do_unlock: bool, as_json: bool, wallet_path: Path | None, validator: str | None, network_path: Path | None) -> None:
    """Your account: free allowance left and when it renews, balance, storage quota, channels, spent and earned."""
    from veil.client.wallet import wallet_address

    path = resolve_wallet(wallet_path)
    addr = wallet_address(path)
    c = connect(validator, network_path)
    try:
        a = c.account(addr)
        params = c.genesis().params
        earned = uploader_earnings(c, addr, params)
    finally:
        c.close()
    mine = [(cid, ch) for cid, ch in a["channels"] if ch.payer == addr]
    settled_spent = sum(ch.paid for _, ch in mine)
    unsettled = _cheques_total(wallet_path) if do_unlock else None
    if as_json:
        emit({"address": addr_text(addr), "allowance_left": a["allowance_left"],
              "allowance": params.allowance_bytes, "epoch_ends": a["epoch_ends"], "balance": a["balance"],
              "storage_quota": a["storage_quota"], "stake": a["stake"],
              "locked": sum(ch.deposit for _, ch in mine), "channels": [channel_row(c, ch, addr) for c, ch in mine],
              "spent_settled": settled_spent, "spent_in_cheques": unsettled, "earned": earned})  # fmt: skip
        return
    click.echo(f"address:    {addr_text(addr)}")
    click.echo(f"allowance:  {human(a['allowance_left'])} of {human(params.allowance_bytes)} free downloads left "
               f"(renews {when(a['epoch_ends'])})")  # fmt: skip
    click.echo(f"balance:    {money(a['balance'])}")
    click.echo(f"storage:    {human(a['storage_quota'])} free storage quota per node (nodes that admit by ticket), "
               f"from {money(a['stake'])} staked")  # fmt: skip
    locked = sum(ch.deposit for _, ch in mine)
    click.echo(f"channels:   {len(mine)} open to nodes, {money(locked)} locked")
    for cid, ch in mine:
        state = "closing" if ch.status == CLOSING else f"open until {when(ch.expires)}"
        click.echo(f"  {cid.hex()[:16]} to {addr_text(ch.payee)[:20]}…  {money(ch.deposit)} left, "
                   f"{money(ch.paid)} settled, {human(ch.free_bytes)} free settled; {state}")  # fmt: skip
    if unsettled is not None:
        click.echo(f"spent:      {money(unsettled)} in cheques on open channels ({money(settled_spent)} settled by nodes)")
    else:
        click.echo(f"spent:      {money(settled_spent)} settled by nodes on open channels (--unlock: include unsettled cheques)")
    click.echo(f"earned:     {money(earned)} as uploader (from others' paid downloads)")


commands = [account]
