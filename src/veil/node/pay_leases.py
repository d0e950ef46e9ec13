"""The leases paying a charging node to keep shares (docs/specs/payments.md, "Paid storage").

An uploader tells the node about a lease (``POST /v1/pay/leases``, node/lease_answers.py, which
checks it on the ledger and against the stored share, and answers the ledger's challenges); the
book keeps its id in ``DATA/payments/leases.json`` and claims what has accrued (the settler, and
``veil node earnings``).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path
from typing import Any

from veil.crypto.sign import SigningKey
from veil.durable import write_atomic
from veil.ledger import tx as txm

from .pay_ledger import GateLedger

log = logging.getLogger("veil.payments")


class LeaseBook:
    def __init__(self, path: Path, ledger: GateLedger, key: SigningKey) -> None:
        self.path = path
        self.ledger = ledger
        self.key = key
        self._lock = threading.Lock()
        self.leases: set[bytes] = self._load()
        self.claimed = 0  # claimed since start

    def _load(self) -> set[bytes]:
        try:
            return {bytes.fromhex(x) for x in json.loads(self.path.read_text())}
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as e:
            log.error("cannot read %s: %s", self.path, e)
            return set()

    def _save(self) -> None:
        write_atomic(self.path, json.dumps(sorted(x.hex() for x in self.leases)).encode())

    def keep(self, lid: bytes) -> None:
        """A lease paying this node, checked by node/lease_answers.py: claim what it accrues."""
        with self._lock:
            self.leases.add(lid)
            self._save()

    def claim(self) -> int:
        """Claim what every lease has accrued; returns the amount claimed (fees not counted)."""
        if not self.leases:
            return 0
        _, params = self.ledger.setup()
        client = self.ledger.client()
        total = 0
        for lid in sorted(self.leases):
            le = client.lease(lid)
            if le is None:
                with self._lock:
                    self.leases.discard(lid)
                    self._save()
                continue
            got = le.claimable(int(client.info()["now"]))
            if got <= params.min_fee:
                continue
            self.ledger.submit_own(self.key, functools.partial(txm.lease_claim, self.key, params.chain_id,
                                                               fee=params.min_fee, lease=lid))  # fmt: skip
            total += got
        self.claimed += total
        return total

    def rows(self) -> list[dict[str, Any]]:
        """One row per lease still on the ledger (for the earnings report)."""
        client = self.ledger.client()
        now = int(client.info()["now"])
        out = []
        for lid in sorted(self.leases):
            le = client.lease(lid)
            if le is not None:
                out.append({"lease": lid, "root": le.root, "amount": le.amount,
                            "claimed": le.claimed, "claimable": le.claimable(now), "status": le.status,
                            "end": le.end})  # fmt: skip
        return out
