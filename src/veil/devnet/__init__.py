"""A local network of real node processes on 127.0.0.1, for newcomers, tests and benchmarks.
Imports from: client, node (via subprocess), net.
"""
