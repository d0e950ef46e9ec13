"""The web wallet's server side: account reads for the page, and a relay for transactions it signed.

The key is made, kept and used only in the page (``static/veil-wallet.js``, ``static/wallet-app.js``;
docs/specs/wallet.md). The gateway answers reads about an address (balance, nonce, allowance,
history: all public ledger data) and relays a *signed* transfer to the validators; it never
receives a key, a seed, a passphrase or the wallet file, and cannot alter what it relays
(the signature covers every field). It checks the transaction's structure and signature before
any validator sees it, so a garbled or forged body is a 400 from the gateway, not a load on the
ledger. Every integer that can exceed 2^53 (amounts, nonces, byte counts) is a decimal string
in JSON, so the page parses it with BigInt and never through a float.

Routes (added by app.py): ``GET /wallet`` (the page), ``GET /pay/{invoice}`` (the same page as a
checkout: the request is in the fragment), ``GET /api/wallet/invoice?uri=`` and ``GET /api/wallet/qr?uri=``
(the checkout's status and QR code, docs/specs/invoices.md), ``GET /api/wallet/info``,
``GET /api/wallet/account/{address}``, ``GET /api/wallet/history/{address}``,
``POST /api/wallet/tx`` (the wire bytes, ``application/octet-stream`` or ``application/cbor``), and ``/static/vendor/noble-hashes/{name}`` (argon2id for the page).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import segno

from veil.client.invoices import invoice_payments
from veil.client.ledger_client import LedgerClient
from veil.client.network import Network
from veil.errors import LedgerError
from veil.format.base32 import b32encode
from veil.gateway.tenants import Tenant
from veil.ledger import tx as txm
from veil.ledger.address import AddressError, decode_address, encode_address
from veil.ledger.amount import DECIMALS, SYMBOL
from veil.ledger.invoice import PaymentRequest, PaymentUriError, parse_payment_uri, settle
from veil.net.server import HTTPError, Request, Response

MAX_HISTORY = 100
DEFAULT_HISTORY = 50
MAX_ADDRESS_TEXT = 100
VENDOR = "vendor/noble-hashes"
VENDOR_FILES = ("argon2.js", "blake2.js", "_blake.js", "_md.js", "_u64.js", "utils.js", "LICENSE")
STATIC_FILES = ("wallet-app.js", "veil-wallet.js", "wallet.css")
Handler = Callable[[Request, Tenant], Response]
JsonResponse = Callable[[Any, int], Response]


def _static(name: str) -> bytes:
    return resources.files("veil.gateway").joinpath("static", name).read_bytes()


def static_files() -> dict[str, bytes]:
    """The wallet's page scripts (served at /static/NAME)."""
    return {name: _static(name) for name in STATIC_FILES}


def page_template() -> str:
    return _static("wallet.html").decode()


def parse_address(text: str) -> bytes:
    if len(text) > MAX_ADDRESS_TEXT:
        raise HTTPError(400, "bad_address", "not a Veil address (too long)")
    try:
        return decode_address(text)
    except AddressError as e:
        raise HTTPError(400, "bad_address", str(e)) from e


def describe(raw: bytes, height: int | None, me: bytes) -> dict[str, Any]:
    """One history row as JSON, from ``me``'s point of view."""
    t = txm.decode_tx(raw)
    row: dict[str, Any] = {"id": t.txid.hex(), "height": height, "kind": t.kind, "from": encode_address(t.sender),
                           "fee": str(t.fee), "amount": str(t.amount), "memo": t.memo}  # fmt: skip
    row["to"] = encode_address(t.to) if len(t.to) == 32 else None
    row["invoice"] = b32encode(t.invoice) if t.invoice else None
    if t.kind == txm.TRANSFER:
        row["direction"] = "out" if t.sender == me and t.to != me else "in" if t.to == me and t.sender != me else "self"
    else:
        row["direction"] = "out" if t.sender == me else "in"
    return row


class LedgerRelay:
    """One ``LedgerClient`` for the current network file (a new one when the file changes)."""

    def __init__(self, network: Callable[[], Network]) -> None:
        self._network = network
        self._lock = threading.Lock()
        self._net: Network | None = None
        self._client: LedgerClient | None = None

    def client(self) -> LedgerClient:
        net = self._network()
        with self._lock:
            if net is not self._net:
                if self._client is not None:
                    self._client.close()
                self._client = LedgerClient.from_network(net)
                self._net = net
            if self._client is None:
                raise HTTPError(503, "no_ledger", "this gateway's network lists no validator, so there is no ledger to use")
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._net = None


class WalletApi:
    """The handlers behind the web wallet (see the module docstring)."""

    def __init__(self, network: Callable[[], Network], json_response: JsonResponse,
                 add: Callable[[str, str, Callable[[Request], Response]], None],
                 wrap: Callable[[Handler], Callable[[Request], Response]],
                 page: Callable[[str], Callable[[Request], Response]]) -> None:  # fmt: skip
        """Registers the wallet's pages and API with ``add`` (the gateway's router), wrapped by ``wrap``."""
        self.relay = LedgerRelay(network)
        self._json = json_response
        self.vendor = {name: _static(f"{VENDOR}/{name}") for name in VENDOR_FILES}
        self.templates = dict.fromkeys(("wallet", "checkout"), page_template())  # the pages with this template
        self.add_routes(add, wrap, page)

    def add_routes(self, add: Callable[[str, str, Callable[[Request], Response]], None],
                   wrap: Callable[[Handler], Callable[[Request], Response]],
                   page: Callable[[str], Callable[[Request], Response]]) -> None:  # fmt: skip
        """The wallet's pages (wallet, checkout) and API on the gateway's router."""
        add("GET", "/wallet", page("wallet"))
        add("GET", "/pay/{invoice}", page("checkout"))
        for method, pattern, fn in self.routes():
            add(method, pattern, wrap(fn))

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/wallet/info", self.info),
            ("GET", "/api/wallet/account/{address}", self.account),
            ("GET", "/api/wallet/history/{address}", self.history),
            ("POST", "/api/wallet/tx", self.submit),
            ("GET", "/api/wallet/invoice", self.invoice_status),
            ("GET", "/api/wallet/qr", self.qr),
            ("GET", f"/static/{VENDOR}/{{name}}", self.vendor_file),
        ]

    def vendor_file(self, req: Request, tenant: Tenant) -> Response:
        data = self.vendor.get(req.params["name"])
        if data is None:
            raise HTTPError(404, "not_found", "no such file")
        ctype = "text/javascript; charset=utf-8" if req.params["name"].endswith(".js") else "text/plain; charset=utf-8"
        return Response(body=data, content_type=ctype, headers={"Cache-Control": "no-cache"})

    def info(self, req: Request, tenant: Tenant) -> Response:
        g = self.relay.client().genesis()
        return self._json({"chain": g.chain, "network": g.name, "min_fee": str(g.params.min_fee),
                           "decimals": DECIMALS, "symbol": SYMBOL, "max_memo": txm.MAX_MEMO,
                           "epoch_seconds": g.params.epoch_seconds}, 200)  # fmt: skip

    def account(self, req: Request, tenant: Tenant) -> Response:
        addr = parse_address(req.params["address"])
        c = self.relay.client()
        a = c.account(addr)
        return self._json({
            "address": encode_address(addr), "exists": bool(a.get("exists", True)),
            "balance": str(a["balance"]), "nonce": str(a["nonce"]), "stake": str(a["stake"]),
            "allowance": str(a.get("allowance", a["allowance_left"])), "allowance_left": str(a["allowance_left"]),
            "epoch_ends": a["epoch_ends"], "channels": len(a["channels"]), "stale": c.last_stale,
        }, 200)  # fmt: skip

    def history(self, req: Request, tenant: Tenant) -> Response:
        addr = parse_address(req.params["address"])
        limit = req.int_param("limit", DEFAULT_HISTORY)
        if not 1 <= limit <= MAX_HISTORY:
            raise HTTPError(400, "bad_request", f"limit must be in [1, {MAX_HISTORY}]")
        rows = []
        for r in self.relay.client().history(addr, limit):
            raw, height = r.get("tx"), r.get("height")
            if not isinstance(raw, bytes) or not (height is None or isinstance(height, int)):
                raise HTTPError(502, "bad_ledger_answer", "a validator sent a malformed history")
            try:
                rows.append(describe(raw, height, addr))
            except LedgerError as e:
                raise HTTPError(502, "bad_ledger_answer", f"a validator sent a malformed transaction: {e}") from e
        return self._json({"address": encode_address(addr), "txs": rows}, 200)

    def submit(self, req: Request, tenant: Tenant) -> Response:
        """Relay one signed transfer; answers once it is in a block (``LedgerClient.submit``)."""
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in ("application/octet-stream", "application/cbor"):
            raise HTTPError(415, "unsupported_media_type", "send the signed transaction's bytes as application/octet-stream")
        if req.content_length > txm.MAX_TX_SIZE:
            raise HTTPError(413, "too_large", f"a transaction is at most {txm.MAX_TX_SIZE} bytes")
        raw = req.read_body(txm.MAX_TX_SIZE)
        try:
            t = txm.decode_tx(raw)
            t.verify_signature()
        except LedgerError as e:
            raise HTTPError(400, e.code, str(e)) from e
        if t.kind != txm.TRANSFER:
            raise HTTPError(400, "not_a_transfer", f"this gateway relays transfers only, not {t.kind}")
        c = self.relay.client()
        try:
            txid = c.submit(raw)
        except LedgerError as e:  # the ledger's refusal, with its code, for the page to explain
            raise HTTPError(400, e.code, str(e)) from e
        st = c.wait_committed(txid)
        return self._json({"id": txid.hex(), "height": st.get("height")}, 200)

    def _request(self, req: Request) -> PaymentRequest:
        text = req.query.get("uri", "")
        try:
            return parse_payment_uri(text)
        except PaymentUriError as e:
            raise HTTPError(400, "bad_request_uri", str(e)) from e

    def invoice_status(self, req: Request, tenant: Tenant) -> Response:
        """The checkout page's poll: what the ledger says about the invoice a ``veil:pay`` URI names."""
        r = self._request(req)
        pays = invoice_payments(self.relay.client(), r.payee, {r.invoice})[r.invoice]
        s = settle(r.amount, r.expires, pays, time.time())
        return self._json({"invoice": r.invoice_text, "status": s.status, "amount": str(r.amount),
                           "received": str(s.received), "late": str(s.late), "credit": str(s.credit),
                           "expires": r.expires, "expired": r.expired(time.time()),
                           "payments": [{"id": p.txid.hex(), "height": p.height, "amount": str(p.amount)}
                                        for p in s.payments]}, 200)  # fmt: skip

    def qr(self, req: Request, tenant: Tenant) -> Response:
        """The QR code (SVG) of a valid ``veil:pay`` URI, for the checkout page (nothing else is drawn)."""
        r = self._request(req)
        buf = io.BytesIO()
        segno.make(r.uri(), error="m").save(buf, kind="svg", scale=6, border=4, xmldecl=False)
        return Response(body=buf.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": "no-cache"})

    def close(self) -> None:
        self.relay.close()
