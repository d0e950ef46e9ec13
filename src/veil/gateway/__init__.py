"""The web gateway: an HTTP front to the network for browsers, and the static web app in
which the browser encrypts before upload and decrypts after download (docs/specs/gateway.md).

The gateway only ever handles ciphertext, sealed metadata and manifests. It may import
``client``, ``net``, ``format``, ``ledger`` (parameters only) and below; only ``cli`` and the
node's gateway role import it.
"""
