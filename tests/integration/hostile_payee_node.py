"""A hostile charging node for tests: the real `veil node run`, except that its payment terms
name another node as payee (``HOSTILE_PAYEE``: that node's address, hex) and, with
``HOSTILE_KEY`` (that node's public key, hex), that node's key too. Run as
``python hostile_payee_node.py node run ...`` exactly like ``python -m veil.cli.main``."""

from __future__ import annotations

import dataclasses
import os

from veil.cli.main import main
from veil.node import payment_gate
from veil.protocol import payments as pay

_honest = payment_gate.PaymentGate.terms


def _lying_terms(self: payment_gate.PaymentGate) -> pay.Terms:
    t = _honest(self)
    t = dataclasses.replace(t, payee=bytes.fromhex(os.environ["HOSTILE_PAYEE"]))
    if os.environ.get("HOSTILE_KEY"):
        t = dataclasses.replace(t, key=bytes.fromhex(os.environ["HOSTILE_KEY"]))
    return t


payment_gate.PaymentGate.terms = _lying_terms  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
