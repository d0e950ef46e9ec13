"""The only package with sockets, TLS and threads serving requests: HTTP/1.1 over TLS 1.3,
peers pinned by node id (docs/specs/transport.md).
Imports from: veil.errors, veil.crypto, veil.format, veil.protocol.
"""
