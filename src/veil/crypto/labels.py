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
# S/Kademlia static puzzle: a node id counts only if this hash of it has enough leading zeros.
NODE_ID_PUZZLE = b"veil/node-id-puzzle/v1"
CONVERGENCE = b"veil/convergence/v1"
# Deletion (docs/specs/caps.md, "Deletion keys"): the uploader's per-file key, derived from its
# deletion secret and the storage index; the manifest holds only the commitment (a hash of it).
DELETE_KEY = b"veil/delete-key/v1"
DELETE_COMMITMENT = b"veil/delete-commitment/v1"
# A resumable download's journal names its file by this hash of the read cap (client/output.py).
DOWNLOAD_RESUME = b"veil/download-resume/v1"

# Ledger ("Bitcache", docs/specs/ledger.md).
ADDRESS = b"veil/address/v1"
ADDRESS_CHECKSUM = b"veil/address-checksum/v1"
TX_SIG = b"veil/tx-sig/v1"
TX_ID = b"veil/tx-id/v1"
TX_LEAF = b"veil/tx-leaf/v1"
TX_NODE = b"veil/tx-node/v1"
CHEQUE_SIG = b"veil/cheque-sig/v1"
CHANNEL_ID = b"veil/channel-id/v1"
BLOCK_HASH = b"veil/block/v2"
BLOCK_SIG = b"veil/block-sig/v2"
GENESIS = b"veil/genesis/v2"
VALIDATOR_SET = b"veil/validator-set/v1"
VALIDATOR_CHANGE_SIG = b"veil/validator-change-sig/v1"
NODE_REG_SIG = b"veil/node-registration-sig/v1"
STORAGE_TICKET_SIG = b"veil/storage-ticket-sig/v1"
STATE = b"veil/state/v1"
STATE_CHANGES = b"veil/state-changes/v1"
WALLET_AAD = b"veil/wallet/v1"
LEASE_ID = b"veil/lease-id/v1"
LEASE_CHALLENGE = b"veil/lease-challenge/v1"  # which block a lease challenge asks for
CHANNEL_CLOSE_SIG = b"veil/channel-close-sig/v1"  # a payee's consent to a payer's cooperative close
PAY_URI_CHECKSUM = b"veil/pay-uri-checksum/v1"  # the checksum of a veil:pay URI (docs/specs/invoices.md)
# Names (docs/specs/names.md).
NAME_COMMIT = b"veil/name-commit/v1"  # commit = H(label, name, owner, salt): the hidden half of commit-reveal
NAME_KEY = b"veil/name-key/v1"  # a name's 256-bit key (its path) in the names tree
NAME_RECORD = b"veil/name-record/v1"  # hash of a name record's canonical CBOR
NAME_LEAF = b"veil/name-leaf/v1"  # names-tree leaf = H(label, key, record hash)
NAME_NODE = b"veil/name-node/v1"  # names-tree inner node = H(label, left, right)

# DHT records (docs/specs/dht.md): what each record's Ed25519 signature covers.
DHT_NODE_RECORD = b"veil/dht-node-record/v1"
DHT_PROVIDER_RECORD = b"veil/dht-provider-record/v1"
# The 256-bit DHT key of a file (storage index -> key): provider records and find_node target it.
DHT_STORAGE_KEY = b"veil/dht-storage-key/v1"
# The DHT key relays announce themselves under (provider records with no shares; circuits.md).
DHT_RELAY_DIRECTORY = b"veil/dht-relay-directory/v1"

# Mutable slots and folders (docs/specs/folders.md).
SLOT_ID = b"veil/slot-id/v1"  # slot id = H(label, Ed25519 public key)
SLOT_SIG = b"veil/slot-sig/v1"  # what a slot record's Ed25519 signature covers
SLOT_RECORD = b"veil/slot-record/v1"  # a record's hash (the second half of its checkstring)
FOLDER_READ_KEY = b"veil/folder-read-key/v1"  # read key = HKDF(write seed, label)
FOLDER_VERIFY_KEY = b"veil/folder-verify-key/v1"  # verify key = HKDF(read key, label)
FOLDER_LISTING_KEY = b"veil/folder-listing-key/v1"  # HKDF(read key, salt, label): seals names and caps
FOLDER_INDEX_KEY = b"veil/folder-index-key/v1"  # HKDF(verify key, salt, label): seals child verify caps
FOLDER_LISTING_AAD = b"veil/folder-listing/v1"
FOLDER_INDEX_AAD = b"veil/folder-index/v1"
FOLDER_CHILD_WRITE_KEY = b"veil/folder-child-write-key/v1"  # HKDF(write seed, salt, label)
FOLDER_CHILD_WRITE_AAD = b"veil/folder-child-write/v1"

# The S3 endpoint (docs/specs/s3.md).
S3_META_ID = b"veil/s3-meta-id/v1"  # the local metadata table's key: H(label, file read cap)
S3_KEYS = b"veil/s3-keys/v1"  # passphrase-sealing context of the endpoint's keys file
