"""Veil: a decentralized, end-to-end encrypted file sharing and storage network.

Layers (a module imports only from layers to its left; tests/unit/test_layers.py enforces it):

    errors -> crypto -> format, erasure -> ledger, dht, protocol -> storage, net
           -> client, node -> devnet, gateway -> cli, bench
"""

__version__ = "0.1.0"
