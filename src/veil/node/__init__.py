"""The `veil node` process and its roles (storage, validator, dht, gateway ...).

A role is an object with ``name``, ``attach(ctx, router)``, ``start()``, ``stop()`` and
``status()``; the node wires the enabled ones onto one HTTPS listener.
Imports from: errors, crypto, format, erasure, protocol, storage, net, ledger, dht.
"""
