"""The Kademlia DHT, sans-I/O: ids, routing table, lookups, signed records, record store,
rate limits and message schemas (docs/specs/dht.md).

Nothing here touches sockets, threads or the real clock: callers pass the time in and carry
out the messages the core asks them to send. The same code runs 10,000 simulated nodes in
one process (veil.testing.dhtnet, veil.sim.dht) and real nodes over TLS (veil.node.dht_role).
Imports from: veil.errors, veil.crypto, veil.format.
"""
