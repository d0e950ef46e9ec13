"""The devnet's ledger: a validator cluster sharing one genesis, the faucet, node registration.

``make_cluster_genesis(node_dirs, params)`` writes the same ``ledger/genesis.cbor`` and cluster
secret ``ledger/cluster.key`` into each validator's data dir, naming their keys (created if
missing) as the initial validator set, and a faucet key ``ledger/faucet.key`` holding most of
the supply. ``add_validators(devnet, n)`` adds such nodes to a devnet being created;
``faucet(devnet, addr, amount)`` pays from the faucet (and stakes the allowance stake for the
account, as an onboarding sponsor would); ``register_nodes(devnet)`` bonds every charging
storage node from the faucet so the allowance pool pays it; ``sponsor_nodes(devnet)`` funds and
stakes for every storage node's own account (its repairer's payer and ticket key).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

from veil.client.ledger_client import LedgerClient
from veil.client.network import load_network
from veil.client.tickets import read_uploader_key
from veil.crypto.idpuzzle import DEVNET_ID_BITS
from veil.crypto.sign import SigningKey, node_id
from veil.devnet.specs import DevnetFiles, NodeSpec, free_port
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.amount import UNIT
from veil.ledger.genesis import Genesis, make_genesis
from veil.ledger.params import Params
from veil.ledger.rules_stake import node_registration_message
from veil.ledger.state import Validator
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


def make_cluster_genesis(
    members: list[tuple[Path, str, str]],
    params: Params | None = None,
    faucet_amount: int = DEFAULT_FAUCET,
    pool: int = DEFAULT_POOL,
    genesis_time: int | None = None,
    extra_mints: dict[bytes, int] | None = None,
) -> Genesis:
    """Genesis for validators ``(data dir, raft HOST:PORT, api HOST:PORT)``, written into each dir."""
    for d, _, _ in members:
        if (ledger_dir(d) / "genesis.cbor").exists():
            raise UsageError(f"{ledger_dir(d) / 'genesis.cbor'} exists already; a chain has exactly one genesis")
    vals = [Validator(load_or_create(d / "identity.key", DEVNET_ID_BITS).public_key, raft, api) for d, raft, api in members]
    faucet = SigningKey.generate()
    mints = dict(extra_mints or {})
    mints[address_of(faucet.public_key)] = faucet_amount
    g = make_genesis(params or Params(chain_id=DEVNET_CHAIN), int(time.time()) if genesis_time is None else genesis_time,
                     vals, mints, pool)  # fmt: skip
    secret = os.urandom(32).hex().encode()
    for d, _, _ in members:
        _write_private(ledger_dir(d) / "faucet.key", FAUCET_MAGIC + faucet.seed)
        _write_private(ledger_dir(d) / "cluster.key", secret)
        _write_private(ledger_dir(d) / "genesis.cbor", g.raw)
    return g


def make_node_genesis(node_dir: Path, params: Params | None = None, faucet_amount: int = DEFAULT_FAUCET,
                      pool: int = DEFAULT_POOL, genesis_time: int | None = None,
                      extra_mints: dict[bytes, int] | None = None, api: str = "127.0.0.1:0",
                      raft: str | None = None) -> Genesis:  # fmt: skip
    """Genesis (and faucet key, cluster secret) for a chain with one validator, the node at ``node_dir``."""
    return make_cluster_genesis([(node_dir, raft or f"127.0.0.1:{free_port()}", api)], params, faucet_amount, pool,
                                genesis_time, extra_mints)  # fmt: skip


def add_validators(devnet: DevnetFiles, count: int = 1, params: Params | None = None, **genesis_args: Any) -> list[NodeSpec]:
    """Add ``count`` validator nodes sharing one genesis (and faucet) to a devnet being created."""
    specs = devnet.add_specs(count, ["validator"], [], prefix=VALIDATOR_NAME)
    g = make_cluster_genesis([(devnet.node_dir(s), f"127.0.0.1:{free_port()}", f"127.0.0.1:{s.port}") for s in specs],
                             params, **genesis_args)  # fmt: skip
    devnet._save_specs(devnet.specs(), {"genesis": g.hash.hex()})
    return specs


def add_validator(devnet: DevnetFiles, params: Params | None = None, **genesis_args: Any) -> NodeSpec:
    return add_validators(devnet, 1, params, **genesis_args)[0]


def validator_specs(devnet: DevnetFiles) -> list[NodeSpec]:
    specs = [s for s in devnet.specs() if "validator" in s.roles]
    if not specs:
        raise UsageError(f"the devnet at {devnet.root} has no validator (it was created before the ledger existed)")
    return specs


def validator_spec(devnet: DevnetFiles) -> NodeSpec:
    return validator_specs(devnet)[0]


def validator_endpoints(devnet: DevnetFiles) -> str:
    """``NODEID@127.0.0.1:PORT,...`` of every validator of the devnet."""
    out = []
    for s in validator_specs(devnet):
        key = load_or_create(devnet.node_dir(s) / "identity.key", DEVNET_ID_BITS)
        out.append(f"{node_id(key.public_key).hex()}@127.0.0.1:{s.port}")
    return ",".join(out)


def devnet_ledger_client(devnet: DevnetFiles) -> LedgerClient:
    pin = devnet.config().get("genesis")
    genesis_hash = bytes.fromhex(pin) if isinstance(pin, str) else None
    if devnet.static_network_path.exists():
        net = load_network(devnet.static_network_path)
        eps = [(n.host, n.port, n.node_id) for n in net.nodes if "validator" in n.roles]
        if eps:
            return LedgerClient(eps, genesis_hash)
    return LedgerClient.from_endpoint(validator_endpoints(devnet), genesis_hash)


def faucet(devnet: DevnetFiles, addr: bytes, amount: int, wait: bool = True, stake: int | None = None) -> bytes:
    """Pay ``amount`` test money to ``addr`` from the devnet faucet; returns the transaction id.

    Unless ``stake`` is 0, the faucet also stakes for ``addr`` (once: only if it holds no stake
    yet) the allowance stake, so the account gets its free allowance (default: the full one)."""
    key = load_faucet_key(devnet.node_dir(validator_spec(devnet)))
    client = devnet_ledger_client(devnet)
    try:
        g = client.genesis()
        fee = g.params.min_fee
        txid, _ = client.submit_with_nonce(key, lambda n: txm.transfer(key, g.chain, n, fee, addr, amount, "devnet faucet"))
        want = g.params.allowance_stake if stake is None else stake
        if want and not client.account(addr)["stake"]:
            client.submit_with_nonce(key, lambda n: txm.stake(key, g.chain, n, fee, want, addr))
        return txid
    finally:
        client.close()


def register_nodes(devnet: DevnetFiles, bond: int | None = None) -> int:
    """Register and bond (from the faucet, as operator) every storage node not registered yet."""
    client = devnet_ledger_client(devnet)
    try:
        key = load_faucet_key(devnet.node_dir(validator_spec(devnet)))
        g = client.genesis()
        operator = address_of(key.public_key)
        done = 0
        for s in devnet.specs():
            path = devnet.node_dir(s) / "identity.key"
            if "storage" not in s.roles or not path.exists():
                continue
            nk = load_or_create(path, DEVNET_ID_BITS)
            if client.node(address_of(nk.public_key)) is not None:
                continue
            proof = nk.sign(node_registration_message(g.chain, operator))
            build = functools.partial(_register, key, g.chain, g.params.min_fee, nk.public_key, bond or g.params.min_node_bond,
                                      proof)  # fmt: skip
            client.submit_with_nonce(key, build)
            done += 1
        return done
    finally:
        client.close()


NODE_FUNDS = 10 * UNIT


def sponsor_nodes(devnet: DevnetFiles, amount: int = NODE_FUNDS) -> int:
    """Give every storage node's own account (its identity key's address) ``amount`` and the
    allowance stake, once: its repairer pays charging nodes and signs storage tickets with it."""
    client = devnet_ledger_client(devnet)
    try:
        done = 0
        for s in devnet.specs():
            path = devnet.node_dir(s) / "identity.key"
            if "storage" not in s.roles or not path.exists():
                continue
            addr = address_of(load_or_create(path).public_key)
            if client.account(addr)["stake"]:
                continue
            faucet(devnet, addr, amount)
            done += 1
        return done
    finally:
        client.close()


UPLOADER_FUNDS = 100 * UNIT


def sponsor_uploader(devnet: DevnetFiles, path: Path) -> bool:
    """Stake for the devnet's uploader key (client/tickets.py), once, so the tickets `veil put`
    signs with it when there is no wallet are within a quota (the allowance stake's)."""
    addr = address_of(read_uploader_key(path).public_key)
    client = devnet_ledger_client(devnet)
    try:
        if client.account(addr)["stake"]:
            return False
    finally:
        client.close()
    faucet(devnet, addr, UPLOADER_FUNDS)
    return True


def _register(key: SigningKey, chain: str, fee: int, pub: bytes, bond: int, proof: bytes, nonce: int) -> bytes:
    return txm.node_register(key, chain, nonce, fee, pub, bond, proof)
