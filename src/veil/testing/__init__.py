"""Fakes shipped with the package for tests, simulations and benchmarks: a manual clock, an
in-memory network of sans-I/O DHT nodes, ... Never imported by production code paths.
"""
