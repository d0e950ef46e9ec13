"""Every label used for a tagged hash or a key derivation, in one place.

A label is ``veil/<purpose>/v<N>``; no two purposes share one, so no hash or key can stand
in for another. Changing a label changes the format: bump the version in the label and
in the spec (docs/specs/crypto.md) together.
"""

from __future__ import annotations

# Key derivation (HKDF-SHA256 "info" strings); the browser uses the same strings.
SEGMENT_KEY = b"veil/segment-key/v1"
META_KEY = b"veil/meta-key/v1"

# AEAD associated data.
SEGMENT_AAD = b"veil/segment/v1"
META_AAD = b"veil/meta/v1"

# Tagged hashes.
STORAGE_INDEX = b"veil/storage-index/v1"
MANIFEST = b"veil/manifest/v1"
BLOCK_LEAF = b"veil/block-leaf/v1"
BLOCK_NODE = b"veil/block-node/v1"
SEGMENT_LEAF = b"veil/segment-leaf/v1"
SEGMENT_NODE = b"veil/segment-node/v1"
CAP_CHECKSUM = b"veil/cap-checksum/v1"
NODE_ID = b"veil/node-id/v1"
PLACEMENT = b"veil/placement/v1"
CONVERGENCE = b"veil/convergence/v1"
