"""Bitcache, Veil's payments ledger: addresses, amounts, transactions, cheques, blocks and
the pure state machine that applies them (docs/specs/ledger.md).

Everything here is pure (no sockets, no clocks, no randomness) except ``store`` and
``cheque_store``, which keep state in SQLite and are kept apart from the rules.
Imports from: errors, crypto, format.
"""
