"""The ``payments`` role of a charging node: wires the payment gate's parts together, offers
the gate to the storage role (``ctx.services.payments``) and serves the payment API:

    GET  /v1/pay/terms      this node's Terms (CBOR)
    GET  /v1/pay/earnings   its channels (cheque totals, settled or not) and leases
    POST /v1/pay/settle     settle every channel holding an unsettled cheque, claim leases, now
    POST /v1/pay/leases     CBOR {lease, si, shnum}: a lease paying this node (node/lease_answers.py)
    POST /v1/pay/close      CBOR {channel}: consent to the payer's cooperative close (node/channel_close.py)
"""

from __future__ import annotations

from typing import Any

from veil.errors import UsageError
from veil.ledger.address import address_of
from veil.ledger.cheque import Settled
from veil.ledger.cheque_store import SqliteChequeStore
from veil.net.server import Request, Response, Router, cbor_response
from veil.node.context import NodeContext

from .channel_close import add_close_route
from .lease_answers import LeaseAnswers
from .pay_credit import FreeCredit
from .pay_leases import LeaseBook
from .pay_ledger import GateLedger
from .pay_payouts import PayoutIndex
from .pay_settler import Settler
from .payment_gate import DEFAULT_FREE_CREDIT, DEFAULT_MIN_LIFE, PaymentGate, Prices


class PaymentsRole:
    name = "payments"

    def __init__(self) -> None:
        self.gate: PaymentGate | None = None
        self.settler: Settler | None = None
        self.leases: LeaseBook | None = None
        self.ctx: NodeContext | None = None
        self._store: SqliteChequeStore | None = None

    def attach(self, ctx: NodeContext, router: Router) -> None:
        cfg = ctx.config
        if cfg.price_per_gb is None or not cfg.validator:
            raise UsageError("the payments role needs --price-per-gb and --validator")
        self.ctx = ctx
        prices = Prices(cfg.price_per_gb, cfg.lease_price_per_gb_day or 0, cfg.free_credit or DEFAULT_FREE_CREDIT,
                        cfg.min_channel_life or DEFAULT_MIN_LIFE)  # fmt: skip
        self._store = SqliteChequeStore(ctx.data_dir / "payments" / "cheques.db")
        credit = FreeCredit(prices.free_credit)
        ledger = GateLedger(cfg.validator, address_of(ctx.key.public_key), self._store, prices.min_life // 2,
                            credit.learn)  # fmt: skip
        self.leases = LeaseBook(ctx.data_dir / "payments" / "leases.json", ledger, ctx.key)
        self.settler = Settler(ledger, credit, self.leases, ctx.key, prices.min_life)
        self.gate = PaymentGate(ctx.key, prices, ledger, credit, PayoutIndex(self._manifest))
        ctx.services.payments = self.gate
        router.add("GET", "/v1/pay/terms", self._terms)
        router.add("GET", "/v1/pay/earnings", self._earnings)
        router.add("POST", "/v1/pay/settle", self._settle)
        self.answers = LeaseAnswers(ctx, ledger.client, self.leases.keep)
        self.answers.routes(router)
        add_close_route(router, ledger, ctx.key)

    def _manifest(self, si: bytes, mhash: bytes) -> bytes | None:
        store = self.ctx.services.store if self.ctx is not None else None
        return store.manifest(si, mhash) if store is not None else None

    def start(self) -> None:
        assert self.settler is not None and self._store is not None
        self.settler.start([cid for cid, _ in self._store.load()])
        self.answers.start()

    def stop(self) -> None:
        if self.settler is not None:
            self.settler.stop()
            self.answers.stop()
        if self._store is not None:
            self._store.close()

    def status(self) -> dict[str, Any]:
        assert self.gate is not None
        return {**self.gate.advertised(), "settles": self.settler.settles if self.settler is not None else 0}

    def earnings(self) -> dict[str, Any]:
        """What the node's channels hold, settled and not (for `veil node earnings`)."""
        assert self.gate is not None and self.leases is not None
        gate = self.gate
        book, params = gate.ledger.setup()
        rows = []
        for cid in sorted(gate.credit.all_cids()):
            ch = book.channel(cid)
            if ch is None:
                continue
            latest = book.latest(cid)
            s = Settled.of(latest) if latest is not None else ch.settled()
            rows.append({"channel": cid, "payer": ch.payer, "free_bytes": s.free_bytes, "paid_bytes": s.paid_bytes,
                         "amount": s.amount, "uploaders": params.uploader_share(sum(v for _, v in s.uploaders)),
                         "settled_seq": ch.seq, "seq": s.seq, "expires": ch.expires})  # fmt: skip
        return {"channels": rows, "leases": self.leases.rows(), "stats": gate.advertised(),
                "pool_price_per_gb": params.price_per_gb}  # fmt: skip

    def _terms(self, req: Request) -> Response:
        assert self.gate is not None
        return cbor_response(self.gate.terms().to_wire())

    def _earnings(self, req: Request) -> Response:
        return cbor_response(self.earnings())

    def _settle(self, req: Request) -> Response:
        assert self.settler is not None and self.leases is not None
        return cbor_response({"settled": self.settler.settle_all(), "leases_claimed": self.leases.claim()})

