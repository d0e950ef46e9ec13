"""Request/response schemas of the node API and their checks. Pure: no I/O.
Imports from: errors, crypto, erasure, format.
"""
