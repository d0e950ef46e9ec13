"""Simulations that back Veil's claims about scale with numbers (what `veil sim` runs).

Each runs the real sans-I/O code (veil.dht, ...) over the fakes in veil.testing, on a virtual
clock, in one process. Imports from: veil.dht, veil.testing, veil.crypto.
"""
