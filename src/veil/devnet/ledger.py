"""The devnet's ledger: a validator node with a genesis that funds a faucet, and the faucet.

``make_node_genesis(node_dir, params)`` writes ``node_dir/ledger/genesis.cbor`` naming the
node's own key (created if missing) as validator, and a faucet key in
``node_dir/ledger/faucet.key`` holding most of the supply. ``add_validator(devnet)`` adds
such a node to a devnet that is being created; ``faucet(devnet, addr, amount)`` pays from it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from veil.client.ledger_client import LedgerClient
from veil.client.network import load_network
from veil.crypto.sign import SigningKey
from veil.devnet.manager import Devnet, NodeSpec
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.genesis import Genesis, make_genesis
from veil.ledger.params import Params
from veil.node.identity import load_or_create

FAUCET_MAGIC = b"VLFAUCET\x01"
DEVNET_CHAIN = "veil-devnet"
DEFAULT_FAUCET = 1_000_000_000 * UNIT
DEFAULT_POOL = 100_000_000 * UNIT
VALIDATOR_NAME = "validator"


def ledger_dir(node_dir: Path) -> Path:
    return node_dir / "ledger"


def _write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, 0o600)


def load_faucet_key(node_dir: Path) -> SigningKey:
    path = ledger_dir(node_dir) / "faucet.key"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise UsageError(f"no faucet key at {path}: this devnet has no ledger") from e
    if len(raw) != len(FAUCET_MAGIC) + 32 or not raw.startswith(FAUCET_MAGIC):
        raise IntegrityError(f"{path} is not a faucet key")
    return SigningKey(raw[len(FAUCET_MAGIC) :])


def make_node_genesis(
    node_dir: Path,
    params: Params | None = None,
    faucet_amount: int = DEFAULT_FAUCET,
    pool: int = DEFAULT_POOL,
    genesis_time: int | None = None,
    extra_mints: dict[bytes, int] | None = None,
) -> Genesis:
    """Create genesis (and a faucet key) for the validator whose data dir is ``node_dir``."""
    gpath = ledger_dir(node_dir) / "genesis.cbor"
    if gpath.exists():
        raise UsageError(f"{gpath} exists already; a chain has exactly one genesis")
    node_key = load_or_create(node_dir / "identity.key")
    faucet = SigningKey.generate()
    _write_private(ledger_dir(node_dir) / "faucet.key", FAUCET_MAGIC + faucet.seed)
    mints = dict(extra_mints or {})
    mints[address_of(faucet.public_key)] = faucet_amount
    g = make_genesis(
        params or Params(chain_id=DEVNET_CHAIN),
        int(time.time()) if genesis_time is None else genesis_time,
        node_key.public_key,
        mints,
        pool,
    )
    _write_private(gpath, g.raw)
    return g


def add_validator(devnet: Devnet, params: Params | None = None, **genesis_args: Any) -> NodeSpec:
    """Add a validator node (with genesis and faucet) to ``devnet`` before it is started."""
    spec = devnet.add_specs(1, ["validator"], [], prefix=VALIDATOR_NAME)[0]
    make_node_genesis(devnet.node_dir(spec), params, **genesis_args)
    return spec


def validator_spec(devnet: Devnet) -> NodeSpec:
    for s in devnet.specs():
        if "validator" in s.roles:
            return s
    raise UsageError(f"the devnet at {devnet.root} has no validator (it was created before the ledger existed)")


def devnet_ledger_client(devnet: Devnet) -> LedgerClient:
    net = load_network(devnet.static_network_path)
    for n in net.nodes:
        if "validator" in n.roles:
            return LedgerClient(n.host, n.port, n.node_id)
    raise UsageError("the devnet network file lists no validator; run `veil devnet up`")


def faucet(devnet: Devnet, addr: bytes, amount: int, wait: bool = True) -> bytes:
    """Pay ``amount`` test money to ``addr`` from the devnet faucet; returns the transaction id."""
    key = load_faucet_key(devnet.node_dir(validator_spec(devnet)))
    client = devnet_ledger_client(devnet)
    try:
        params = client.genesis().params
        src = address_of(key.public_key)
        # Retry on a nonce race with another faucet call running at the same time.
        for _ in range(5):
            nonce = client.next_nonce(src)
            raw = txm.transfer(key, params.chain_id, nonce, params.min_fee, addr, amount, "devnet faucet")
            try:
                txid = client.submit(raw)
                break
            except Exception as e:
                if getattr(e, "code", "") != "bad_nonce":
                    raise
        else:
            raise UsageError("the faucet is busy; try again")
        if wait:
            client.wait_committed(txid)
        return txid
    finally:
        client.close()
