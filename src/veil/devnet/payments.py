"""A charging devnet: every storage node runs the payments role against the devnet's validator.

``charge_storage_nodes(devnet, options)`` adds ``--validator NODEID@HOST:PORT,...`` (every
validator, pinned) and the given `veil node run` payment options (``--price-per-gb`` ...) to
each storage node's arguments; called by ``Devnet.up`` when it creates a devnet with ``charge``.
The options are kept in the devnet's config, so nodes added later (``Devnet.add``, `veil devnet
add`) charge like the others: ``charge_new_nodes`` applies them and registers the new nodes.

``admit_storage_nodes(devnet, policy)`` makes every storage node admit storage by ticket
(``--storage-admission ticket --validator ...``, the devnet's default; payments.md, "Storage
admission") or openly (``--storage-admission open``), kept in the config as ``admission`` so
added nodes do the same (``admit_new_nodes``; a devnet made before the default changed has no
``admission`` and stays open).
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
    devnet._save_specs(specs, {"charging": True, "charge": list(options)})


def charge_new_nodes(devnet: DevnetFiles) -> None:
    """Give storage nodes not charging yet the devnet's payment options (before they start)."""
    options = devnet.config().get("charge")
    if devnet.config().get("charging") and isinstance(options, list):
        charge_storage_nodes(devnet, [str(o) for o in options])


def admit_storage_nodes(devnet: DevnetFiles, policy: str = "ticket") -> None:
    """Storage nodes take shares only with a storage ticket within the account's quota
    (``ticket``, the default), or from anyone (``open``); either way it is explicit in their args."""
    endpoint = validator_endpoints(devnet) if policy == "ticket" else ""
    specs = devnet.specs()
    for s in specs:
        if "storage" in s.roles and "--storage-admission" not in s.args:
            s.args = [*s.args, "--storage-admission", policy]
            if policy == "ticket" and "--validator" not in s.args:
                s.args += ["--validator", endpoint]
    devnet._save_specs(specs, {"admission": policy})


def admit_new_nodes(devnet: DevnetFiles) -> None:
    policy = devnet.config().get("admission")
    admit_storage_nodes(devnet, policy if policy in ("ticket", "open") else "open")
