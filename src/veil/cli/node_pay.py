"""`veil node earnings`, and the payment options of `veil node run` (--price-per-gb ...).

cli/node.py adds ``earnings`` to the `veil node` group (this module does not import it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from veil.errors import UnavailableError, UsageError, VeilError
from veil.format.textparse import parse_size
from veil.ledger.address import address_of
from veil.ledger.amount import parse_amount
from veil.net.client import PeerClient
from veil.node.context import NodeConfig
from veil.node.identity import load_or_create

from .common import human
from .jsonout import emit, json_option
from .ledger_opts import addr_text, connect, money, validator_option


def payment_config(config: NodeConfig, price: str, lease_price: str | None, free_credit: str | None,
                   validator: str | None) -> NodeConfig:
    """``config`` with the payments role's settings (node/payments_role.py) from `veil node run` options."""
    if not validator:
        raise UsageError("--price-per-gb needs --validator NODEID@HOST:PORT[,...] (the ledger that settles cheques)")
    from veil.client.ledger_client import parse_endpoints

    parse_endpoints(validator)  # unpinned ledger endpoints are refused
    return replace(config, price_per_gb=parse_amount(price) if price.strip() not in ("0", "") else 0,
                   validator=validator,
                   lease_price_per_gb_day=parse_amount(lease_price) if lease_price else None,
                   free_credit=parse_size(free_credit) if free_credit else None)


def _running(data_dir: Path) -> PeerClient:
    try:
        info = json.loads((data_dir / "node.json").read_text())
        return PeerClient(str(info["host"]), int(info["port"]), bytes.fromhex(info["node_id"]), timeout=60)
    except (OSError, ValueError, KeyError) as e:
        raise UsageError(f"no running node at {data_dir} (start it: it settles what it is owed on start)") from e


@click.command("earnings")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Data directory of the node.")
@click.option("--no-settle", is_flag=True, help="Only show; do not settle open channels first.")
@json_option
@validator_option
def earnings(data_dir: Path, no_settle: bool, as_json: bool, validator: str | None, network_path: Path | None) -> None:
    """A node's earnings from serving (per channel, settled or not); settles its channels first."""
    if not (data_dir / "identity.key").exists():
        raise UsageError(f"{data_dir} is not a node's data directory")
    addr = address_of(load_or_create(data_dir / "identity.key").public_key)
    peer = _running(data_dir)
    try:
        if not no_settle:
            done = peer.call("POST", "/v1/pay/settle")
            n = len(done.get("settled", [])) if isinstance(done, dict) else 0
            if not as_json:
                click.echo(f"settled {n} channel{'s' if n != 1 else ''}")
        rep = peer.call("GET", "/v1/pay/earnings")
    except VeilError as e:
        raise UnavailableError(f"the node does not answer its payments API (is it charging?): {e}") from e
    finally:
        peer.close()
    c = connect(validator, network_path)
    try:
        acct = c.account(addr)
        params = c.genesis().params
    finally:
        c.close()
    rows = rep.get("channels", []) if isinstance(rep, dict) else []
    free = sum(int(r["free_bytes"]) for r in rows)
    paid_bytes = sum(int(r["paid_bytes"]) for r in rows)
    gross = sum(int(r["amount"]) for r in rows)
    to_up = sum(int(r["uploaders"]) for r in rows)
    unsettled = sum(1 for r in rows if r["seq"] > r["settled_seq"])
    if as_json:
        emit({"payee": addr_text(addr), "balance": acct["balance"], "settle_txs": acct["nonce"],
              "free_bytes": free, "free_worth": params.free_payout(free), "paid_bytes": paid_bytes, "gross": gross,
              "to_uploaders": to_up, "unsettled_channels": unsettled,
              "channels": [{"id": r["channel"].hex(), "payer": addr_text(r["payer"]), "seq": r["seq"],
                            "settled_seq": r["settled_seq"], "free_bytes": r["free_bytes"],
                            "paid_bytes": r["paid_bytes"], "amount": r["amount"]} for r in rows]})  # fmt: skip
        return
    click.echo(f"payee:     {addr_text(addr)}")
    click.echo(f"balance:   {money(acct['balance'])}  ({acct['nonce']} settle transactions sent)")
    click.echo(f"serving:   {human(free)} free-tier (worth {money(params.free_payout(free))} from the pool), "
               f"{human(paid_bytes)} paid ({money(gross - to_up)} after {money(to_up)} to uploaders)")  # fmt: skip
    click.echo(f"channels:  {len(rows)} open, {unsettled} with cheques not yet settled")
    for r in rows:
        click.echo(f"  {r['channel'].hex()[:16]} from {addr_text(r['payer'])[:20]}…  cheque #{r['seq']} "
                   f"(settled #{r['settled_seq']}): {human(r['free_bytes'])} free, {human(r['paid_bytes'])} paid, "
                   f"{money(r['amount'])}")  # fmt: skip

