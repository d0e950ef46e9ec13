"""A storage node's share store on local disk (docs/specs/storage-protocol.md, "On disk").
Imports from: errors, crypto, erasure, format, protocol. No sockets.
"""
