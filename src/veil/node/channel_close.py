"""A payee node's side of a payer's cooperative close (ledger.md, ``channel_close``).

``POST /v1/pay/close`` CBOR ``{channel}``: the node stops taking cheques on that channel (durably,
in its channel book) and answers ``{cheque?, payee_key, consent}``: its latest accepted cheque
and its signature consenting to close at exactly that cheque (ledger/close_consent.py). The
payer puts both into its ``channel_close`` transaction. Anyone may ask: the consent can only
close the channel at the node's own latest cheque, which is what the node would settle anyway,
and the worst a stranger can do is end a channel early (the payer opens a new one). Imports
from: ledger, net, node.context.
"""

from __future__ import annotations

from typing import Any

from veil.crypto.sign import SigningKey
from veil.errors import LedgerError
from veil.format import cbor
from veil.format.fields import get_bytes, require_map
from veil.net.server import Request, Response, Router, cbor_response

from .pay_ledger import GateLedger


def add_close_route(router: Router, ledger: GateLedger, key: SigningKey) -> None:
    """``ledger`` is the payment gate's ledger view (its channel book); ``key`` the node's."""

    def close(req: Request) -> Response:
        m = require_map(cbor.decode(req.read_body(256), 256), "close request", {"channel"})
        cid = get_bytes(m, "channel", "close request", 32)
        book, _ = ledger.setup()
        if book.channel(cid) is None and ledger.refresh(cid) is None:
            raise LedgerError("no open channel paying this node", "unknown_channel")
        cheque, sig = book.consent_close(key, cid)
        out: dict[str, Any] = {"payee_key": key.public_key, "consent": sig}
        if cheque is not None:
            out["cheque"] = cheque.raw
        return cbor_response(out)

    router.add("POST", "/v1/pay/close", close)
