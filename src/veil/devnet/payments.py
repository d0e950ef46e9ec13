"""A charging devnet: every storage node runs the payments role against the devnet's validator.

``charge_storage_nodes(devnet, validator_spec, options)`` adds ``--validator NODEID@HOST:PORT``
and the given `veil node run` payment options (``--price-per-gb`` ...) to each storage node's
arguments; called by ``Devnet.up`` when it creates a devnet with ``charge``.
"""

from __future__ import annotations

from veil.crypto.sign import node_id
from veil.devnet.manager import Devnet, NodeSpec
from veil.node.identity import load_or_create


def validator_endpoint(devnet: Devnet, spec: NodeSpec) -> str:
    """``NODEID@127.0.0.1:PORT`` of the devnet's validator (its identity exists once genesis does)."""
    key = load_or_create(devnet.node_dir(spec) / "identity.key")
    return f"{node_id(key.public_key).hex()}@127.0.0.1:{spec.port}"


def charge_storage_nodes(devnet: Devnet, validator: NodeSpec, options: list[str]) -> None:
    endpoint = validator_endpoint(devnet, validator)
    specs = devnet.specs()
    for s in specs:
        if "storage" in s.roles and "--price-per-gb" not in s.args:
            s.args = [*s.args, *options, "--validator", endpoint]
    devnet._save_specs(specs)
