"""`veil put --lease DAYS` (paid storage) and `veil audit VERIFYCAP` (challenge leased nodes)."""

from __future__ import annotations

from pathlib import Path

import click

from veil.client.lease import audit as run_audit
from veil.client.lease import open_leases, repair_leader_account
from veil.client.ledger_client import LedgerClient
from veil.client.network import Network
from veil.client.tickets import Tickets
from veil.client.upload import UploadResult
from veil.errors import UsageError
from veil.format.caps import parse_verify_cap
from veil.ledger.address import decode_address, encode_address
from veil.ledger.amount import format_amount

from .common import direct_only, network_option, open_network
from .ledger_opts import unlock
from .pay_opts import make_payer


def _ledger(net: Network) -> LedgerClient:
    c = LedgerClient.from_network(net)
    if c is not None:
        return c
    raise UsageError("the network lists no validator: leases need the ledger")


def lease_after_upload(net: Network, res: UploadResult, days: int, wallet_path: Path | None, quiet: bool,
                       auditor: str | None = None) -> None:  # fmt: skip
    """Pay the nodes holding ``res``'s shares to keep them ``days`` days (one escrow per share);
    ``auditor``: ``leader`` (the node expected to lead the file's repair) or an address."""
    ledger = _ledger(net)
    try:
        who = None
        if auditor is not None:
            who = repair_leader_account(net, res) if auditor == "leader" else decode_address(auditor)
        receipts = open_leases(net, ledger, unlock(wallet_path), res, days, who)
    finally:
        ledger.close()
    total = sum(r.amount for r in receipts)
    leased = [r for r in receipts if r.lease is not None]
    if not quiet:
        click.echo(f"leases:     {len(leased)} of {len(receipts)} shares for {days} days, "
                   f"{format_amount(total)} VEIL in escrow"
                   + (f", audited by {encode_address(who)}" if who is not None else ""))  # fmt: skip
    for r in receipts:
        if r.note:
            click.echo(f"veil: warning: share {r.shnum} on {r.node.label}: {r.note}", err=True)


@click.command()
@click.argument("verifycap")
@click.option("--rounds", default=1, show_default=True, help="Random blocks to ask each leased node for.")
@click.option("--no-report", is_flag=True, help="Do not challenge or fail anything on the ledger (just show it).")
@click.option("--wait", is_flag=True, help="Wait for every ledger challenge to be answered or to run out (the "
              "challenge window, a network parameter), and fail the leases whose node did not answer.")
@click.option("--repair", "repair_file", is_flag=True,
              help="Instead of failing a lease whose node did not answer, repair the file (paid from this wallet) "
                   "and move the lease to the share's new holder: its unearned escrow pays the new holder, and "
                   "the repair's cost back to this wallet (lease_move on the ledger).")
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The wallet that pays for (or audits) the leases.")
@network_option
def audit(verifycap: str, rounds: int, no_report: bool, wait: bool, repair_file: bool, wallet_path: Path | None,
          network_path: Path | None) -> None:  # fmt: skip
    """Challenge every node leased to keep a share of the file: a random block and its Merkle proof.

    A node that cannot answer is challenged on the ledger: it must post a block the ledger picks,
    with its Merkle proof, within the challenge window. Only a challenge left unanswered fails the
    lease (this command fails it once the window is over: run it again then, or use --wait); the
    lease then stops paying and the rest of the escrow comes back. Exit 0 only if every leased node
    passed."""
    vc = parse_verify_cap(verifycap)
    direct_only("veil lease audit")
    net = open_network(network_path)
    w = unlock(wallet_path)
    net.tickets = Tickets.of_key(w.key)  # shares the repair places on nodes that admit by ticket
    ledger = _ledger(net)
    payer = make_payer(net, None, wallet_path)
    try:
        results = run_audit(net, ledger, w, vc, payer, rounds=max(1, rounds), report=not no_report, wait=wait,
                            repair_file=repair_file)  # fmt: skip
    finally:
        ledger.close()
        if payer is not None:
            payer.close()
    if not results:
        click.echo("no active leases of this file paid for or audited by this wallet")
        return
    for r in results:
        if r.state == "answered":
            what = "answered the ledger's challenge"
        elif r.ok:
            what = f"block {r.index}: ok"
        elif r.state == "moved":
            what = f"FAILED, repaired: {r.problem}"
        elif r.state == "failed":
            what = f"FAILED: {r.problem}" + (" (lease failed on the ledger)" if r.reported else "")
        else:
            what = f"block {r.index}: {r.problem}"
        click.echo(f"share {r.shnum:>3} on {r.node}: {what}")
    failed = sum(1 for r in results if not r.ok)
    moved = sum(1 for r in results if r.state == "moved")
    click.echo(f"{len(results) - failed} passed, {failed} failed" + (f" ({moved} repaired, lease moved)" if moved else ""))
    if failed > moved:
        raise SystemExit(1)


commands = [audit]
