"""`veil sim ledger`: the ledger's state at N accounts, in a real SQLite file built by the real
store code (``ledger.store.LedgerStore``), and the real ledger machine applying signed transfers
into blocks against it (``node.validator_core.LedgerMachine``, synchronous=FULL).

Measured, in one run:
  * build: N accounts written in batches (``LedgerStore.load_accounts``), in key order (as a
    state sync from a snapshot would write them: pages are filled completely), then the size of
    the file on disk (database + WAL) and bytes per account;
  * lookups: ``get_account`` of random existing addresses through a freshly opened store
    (SQLite's page cache cold; the OS page cache is whatever this machine has), per second;
  * apply: blocks of signed transfers from funded accounts to random *existing* accounts (each
    write touches a random leaf page of the N-account B-tree), plus a share to new addresses
    (random inserts that split pages), at synchronous=FULL; transfers/s, against the same
    machine's rate on an almost empty store measured in the same run.

The addresses are uniformly spread over the 256-bit space (stepped, with a random offset in
each step), so lookups and writes land on random pages exactly as hashed addresses do.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from veil.crypto.sign import SigningKey
from veil.ledger import tx as txm
from veil.ledger.address import address_of
from veil.ledger.genesis import make_genesis
from veil.ledger.params import Params
from veil.ledger.store import LedgerStore
from veil.node.validator_core import LedgerMachine, txs_entry

_SPAN = 1 << 256
BALANCE = 10**9


@dataclass(frozen=True)
class LedgerSimResult:
    accounts: int
    build_s: float
    build_accounts_per_s: float
    bytes_on_disk: int
    bytes_per_account: float
    lookups: int
    lookup_per_s: float
    lookup_us: float
    transfers: int
    block_size: int
    apply_per_s: float  # transfers/s into blocks at N accounts
    apply_per_s_small: float  # the same machine, same run, on a store with only the senders
    apply_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _addr(i: int, n: int, rng: random.Random) -> bytes:
    step = _SPAN // n
    return (i * step + rng.randrange(step)).to_bytes(32, "big")


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(str(path) + "-wal")) if p.exists())


def _apply_rate(path: Path, senders: list[SigningKey], targets: list[bytes], transfers: int, block: int,
                fresh_share: float, seed: int) -> float:  # fmt: skip
    """Transfers/s applied into blocks by the real machine over the store at ``path``."""
    rng = random.Random(seed)
    store = LedgerStore(path)
    g = store.genesis()
    assert g is not None
    raws: list[bytes] = []
    nonces = [0] * len(senders)
    for j in range(transfers):
        s = j % len(senders)
        to = os.urandom(32) if rng.random() < fresh_share else rng.choice(targets)
        raws.append(txm.transfer(senders[s], g.chain, nonces[s], 1, to, 1))
        nonces[s] += 1
    m = LedgerMachine(store, SigningKey.generate())
    start_index = store.applied()
    t = time.perf_counter()
    for i in range(0, len(raws), block):
        idx = start_index + i // block + 1
        m.apply(idx, txs_entry(g.time + 1, raws[i : i + block]))
        bad = [v for v in m.verdicts[idx] if v.error is not None]
        if bad:
            raise RuntimeError(f"simulated transfer rejected: {bad[0].error}")
    el = time.perf_counter() - t
    store.close()
    return len(raws) / el


def _new_store(path: Path, senders: list[SigningKey]) -> LedgerStore:
    store = LedgerStore(path, synchronous="NORMAL")
    g = make_genesis(Params(chain_id="sim-ledger"), int(time.time()) - 10, SigningKey.generate().public_key,
                     {address_of(s.public_key): 10**15 for s in senders}, 0)  # fmt: skip
    store.init_genesis(g)
    return store


def run(accounts: int, workdir: Path, lookups: int = 200_000, transfers: int = 20_000, block: int = 500,
        fresh_share: float = 0.1, seed: int = 1,
        progress: Callable[[str, int, int], None] | None = None) -> LedgerSimResult:  # fmt: skip
    """Build the state at ``accounts`` accounts under ``workdir`` and measure it (see the module doc)."""
    if accounts < 1000:
        raise ValueError("--accounts must be at least 1000")
    rng = random.Random(seed)
    senders = [SigningKey(rng.randbytes(32)) for _ in range(200)]
    path = workdir / "state.db"
    store = _new_store(path, senders)
    chunk = 250_000
    sample: list[bytes] = []
    t = time.perf_counter()
    for start in range(0, accounts, chunk):
        end = min(accounts, start + chunk)
        rows = [(_addr(i, accounts, rng), BALANCE, 0, 0, 0, 0, 0, 0, 0) for i in range(start, end)]
        sample.extend(r[0] for r in rng.sample(rows, min(len(rows), 2000)))
        store.load_accounts(rows)
        if progress:
            progress("build", end, accounts)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    build = time.perf_counter() - t
    store.close()
    size = _file_size(path)

    store = LedgerStore(path)
    probe = [rng.choice(sample) for _ in range(lookups)]
    t = time.perf_counter()
    for i, a in enumerate(probe):
        if store.get_account(a) is None:
            raise RuntimeError("an account written is missing")
        if progress and i % 10_000 == 0:
            progress("lookup", i, lookups)
    lk = time.perf_counter() - t
    store.close()

    if progress:
        progress("apply", 0, 2)
    big = _apply_rate(path, senders, sample, transfers, block, fresh_share, seed)
    small_path = workdir / "small.db"
    _new_store(small_path, senders).close()
    few = [address_of(s.public_key) for s in senders]
    small = _apply_rate(small_path, senders, few, transfers, block, fresh_share, seed)
    if progress:
        progress("apply", 2, 2)
    return LedgerSimResult(
        accounts=accounts, build_s=build, build_accounts_per_s=accounts / build, bytes_on_disk=size,
        bytes_per_account=size / accounts, lookups=lookups, lookup_per_s=lookups / lk, lookup_us=lk / lookups * 1e6,
        transfers=transfers, block_size=block, apply_per_s=big, apply_per_s_small=small, apply_ratio=big / small,
    )  # fmt: skip
