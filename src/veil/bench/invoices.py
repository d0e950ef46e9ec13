"""`veil bench invoices`: invoices paid per second end to end, against plain transfers per second
in the same run, on one real validator process (`veil node run --role validator`).

One payment each, from ``--threads`` payers at once, each waiting for its block (what `veil pay`
and `veil wallet send` do):
  * plain: sign a transfer with the next nonce, submit, wait for the commit;
  * invoice: the payee's book makes the invoice (SQLite), its URI is written and parsed again
    (checksum and all), the payer pays it (the transfer carries the invoice id), and the payee's
    settlement pass over the ledger (history, block times, ``settle``) sees every invoice paid.
    Webhook delivery (issue 14, later work) is not in the loop yet.
The ratio is the invoice rate over the plain rate: what the invoice machinery costs over a transfer.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from veil.bench.ledger import _Cluster
from veil.client.invoices import InvoiceBook, invoice_payments, pay_request
from veil.client.ledger_client import LedgerClient
from veil.client.wallet import Wallet
from veil.crypto.sign import SigningKey
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.invoice import PAID, parse_payment_uri, settle

AMOUNT = 1000


def _plain(c: LedgerClient, payers: list[SigningKey], payee: bytes, count: int) -> float:
    chain, fee = c.chain, c.genesis().params.min_fee

    def one(k: SigningKey) -> None:
        for _ in range(count // len(payers)):
            txid, _ = c.submit_with_nonce(k, lambda n: txm.transfer(k, chain, n, fee, payee, AMOUNT))
            c.wait_committed(txid)

    t = time.perf_counter()
    with ThreadPoolExecutor(len(payers)) as ex:
        list(ex.map(one, payers))
    return (count // len(payers)) * len(payers) / (time.perf_counter() - t)


def _invoiced(c: LedgerClient, payers: list[SigningKey], payee: bytes, book: InvoiceBook, count: int) -> tuple[float, int]:
    per = count // len(payers)

    def one(k: SigningKey) -> list[bytes]:
        w = Wallet(Path("bench"), k)
        ids = []
        for _ in range(per):
            req, _ = book.create(payee, AMOUNT, "bench order", 3600)
            pay_request(c, w, parse_payment_uri(req.uri()))
            ids.append(req.invoice)
        return ids

    t = time.perf_counter()
    with ThreadPoolExecutor(len(payers)) as ex:
        ids = [i for batch in ex.map(one, payers) for i in batch]
    reqs = {r.invoice: r for r, _ in book.all()}
    pays = invoice_payments(c, payee, set(ids))
    now = time.time()
    paid = sum(settle(reqs[i].amount, reqs[i].expires, pays[i], now).status == PAID for i in ids)
    return len(ids) / (time.perf_counter() - t), paid


@click.command("invoices")
@click.option("--count", default=400, show_default=True, help="Payments of each kind.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Payers paying at once.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def invoices_cmd(count: int, threads: int, as_json: bool) -> None:
    """Invoices paid per second end to end (create, URI, pay, settled from the ledger) against plain
    transfers per second, on one real validator process, in one run."""
    count = max(count, threads)
    payers = [SigningKey.generate() for _ in range(threads)]
    payee = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="veil-bench-invoices-") as d:
        tmp = Path(d)
        cl = _Cluster(tmp, 1, {address_of(k.public_key): 10**15 for k in payers})
        cl.up()
        c = cl.client()
        book = InvoiceBook(tmp / "payee.invoices")
        try:
            plain = _plain(c, payers, address_of(payee.public_key), count)
            inv, paid = _invoiced(c, payers, address_of(payee.public_key), book, count)
        finally:
            book.close()
            c.close()
            cl.down()
    n = (count // threads) * threads
    res: dict[str, Any] = {"plain_per_s": plain, "invoices_per_s": inv, "ratio": inv / plain, "payments": n,
                           "invoices_settled_paid": paid, "threads": threads}  # fmt: skip
    if as_json:
        click.echo(json.dumps(res, indent=2, sort_keys=True))
        return
    click.echo(f"plain transfers : {plain:>8,.1f}/s ({n} payments, {threads} payers at once, each waiting for its block)")
    click.echo(f"invoices        : {inv:>8,.1f}/s end to end (create, URI, pay, settled from the ledger; {paid} of {n} paid)")
    click.echo(f"ratio           : {res['ratio']:.0%} of plain transfers (webhook delivery is not in the loop yet)")
    click.echo("(one validator process on this shared machine: figures are indicative)")
