"""Client library: upload, download, info, check and repair, driving format + erasure + net.
Imports from: errors, crypto, erasure, format, protocol, net (and ledger/dht for later roles).
"""
