"""A charging devnet: every storage node runs the payments role against the devnet's validator.

``charge_storage_nodes(devnet, options)`` adds ``--validator NODEID@HOST:PORT,...`` (every
validator, pinned) and the given `veil node run` payment options (``--price-per-gb`` ...) to
each storage node's arguments; called by ``Devnet.up`` when it creates a devnet with ``charge``.
"""

from __future__ import annotations

from veil.devnet.ledger import validator_endpoints
from veil.devnet.specs import DevnetFiles


def charge_storage_nodes(devnet: DevnetFiles, options: list[str]) -> None:
    endpoint = validator_endpoints(devnet)
    specs = devnet.specs()
    for s in specs:
        if "storage" in s.roles and "--price-per-gb" not in s.args:
            s.args = [*s.args, *options, "--validator", endpoint]
    devnet._save_specs(specs)
