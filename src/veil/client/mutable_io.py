"""One mutable slot on its n nodes, over the StorageTransport: read the current version, write a
new one by compare-and-swap with retries, fetch an old version, list the versions kept.

docs/specs/folders.md, "Versions, reads and writes". The decisions are the pure state machines
of format/mutable_cas.py (``pick_latest``, ``CasWrite``); this module only sends the requests,
all nodes of a round in parallel. A slot lives on the first n storage nodes in rendezvous order
of its slot id (as shares do), n = min(FOLDER_N, candidates), happy = max(n//2 + 1, 7n/10).
Every answer is verified (format/mutable.py): a node can hold a version back, never forge one.

Imports from: veil.errors, veil.format, veil.protocol, veil.client.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError, NotFoundError, UnavailableError, VeilError
from veil.format.mutable import Checkstring, SlotRecord, parse_record, sign_record
from veil.format.mutable_cas import (
    Accepted,
    Attempt,
    CasWrite,
    Done,
    Holds,
    Latest,
    Reply,
    Silent,
    backoff,
    pick_latest,
    read_count,
)
from veil.protocol.mutable import VersionInfo
from veil.protocol.nodeinfo import NodeInfo

from .network import Network

FOLDER_N = 10  # nodes a folder's slot lives on (fewer on a smaller network)
FOLDER_K = 3  # the file parameter readers ask more than
MAX_ATTEMPTS = 12  # compare-and-swap rounds before "the folder is busy"


def folder_happy(n: int) -> int:
    return max(n // 2 + 1, n * 7 // 10)


@dataclass(frozen=True)
class SlotNodes:
    slot: bytes
    nodes: tuple[NodeInfo, ...]

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def happy(self) -> int:
        return folder_happy(self.n)


def slot_nodes(net: Network, slot: bytes) -> SlotNodes:
    cands = net.storage_nodes_for(slot)
    return SlotNodes(slot, tuple(cands[:FOLDER_N]))


@dataclass
class SlotRead:
    latest: Latest
    held: dict[int, bytes | None]  # node index -> raw answer, for the nodes that answered
    problems: list[str] = field(default_factory=list)


def _parallel(jobs: list[int], fn: Callable[[int], object]) -> list[object]:
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), FOLDER_N)), thread_name_prefix="slot") as ex:
        return list(ex.map(fn, jobs))


def _get(net: Network, sn: SlotNodes, idxs: list[int], seq: int | None, held: dict[int, bytes | None],
         problems: list[str]) -> None:  # fmt: skip
    def one(i: int) -> object:
        try:
            return net.transport.get_slot(sn.nodes[i], sn.slot, seq)
        except VeilError as e:
            return e

    for i, got in zip(idxs, _parallel(idxs, one), strict=True):
        if isinstance(got, VeilError):
            problems.append(f"{sn.nodes[i].label}: {got}")
        else:
            held[i] = got  # type: ignore[assignment]


def read_slot(net: Network, sn: SlotNodes, must_exist: bool = True) -> SlotRead:
    """The current version: ask ``read_count`` nodes, then the rest if that does not decide it."""
    held: dict[int, bytes | None] = {}
    problems: list[str] = []
    first = list(range(read_count(sn.n, sn.happy, FOLDER_K)))
    _get(net, sn, first, None, held, problems)
    latest = pick_latest(held, sn.slot, sn.n, sn.happy)
    if not latest.decided:
        _get(net, sn, [i for i in range(sn.n) if i not in first], None, held, problems)
        latest = pick_latest(held, sn.slot, sn.n, sn.happy)
    if not latest.decided and len(held) == sn.n:
        # Every node answered, some with forged or garbled records: nothing more can be learnt,
        # and the best valid version is the answer (a liar can only have held one back).
        latest = replace(latest, decided=True)
    if not latest.decided:
        raise UnavailableError(f"cannot tell which version of the folder is current: {len(held)} of {sn.n} "
                               f"nodes answered ({'; '.join(problems[-3:])})")  # fmt: skip
    if latest.record is None and must_exist:
        detail = f"; {len(latest.invalid)} answered with a forged or garbled record" if latest.invalid else ""
        raise NotFoundError(f"no node holds this folder ({len(held)} of {sn.n} asked answered{detail})")
    return SlotRead(latest, held, problems)


def fetch_version(net: Network, sn: SlotNodes, seq: int, want: Checkstring | None = None) -> SlotRecord | None:
    """Version ``seq`` of the slot (checked against ``want`` if given) from any node keeping it."""
    for i in range(sn.n):
        try:
            raw = net.transport.get_slot(sn.nodes[i], sn.slot, seq)
        except VeilError:
            continue
        if raw is None:
            continue
        try:
            rec = parse_record(raw, sn.slot)
        except IntegrityError:
            continue
        if rec.seq == seq and (want is None or rec.checkstring == want):
            return rec
    return None


def slot_versions(net: Network, sn: SlotNodes) -> dict[Checkstring, int]:
    """Every version some node keeps -> how many of the slot's nodes keep it."""
    def one(i: int) -> object:
        try:
            return net.transport.slot_versions(sn.nodes[i], sn.slot)
        except VeilError as e:
            return e

    out: dict[Checkstring, int] = {}
    for got in _parallel(list(range(sn.n)), one):
        if isinstance(got, list):
            for v in got:
                assert isinstance(v, VersionInfo)
                cs = Checkstring(v.seq, v.hash)
                out[cs] = out.get(cs, 0) + 1
    return out


def put_everywhere(net: Network, sn: SlotNodes, rec: SlotRecord, expects: dict[int, Checkstring | None],
                   problems: list[VeilError] | None = None) -> dict[int, Reply]:  # fmt: skip
    """PUT ``rec`` to the nodes of ``expects`` in parallel; each answer as the state machine's
    Reply (errors also appended to ``problems``)."""
    def one(i: int) -> object:
        try:
            got = net.transport.put_slot(sn.nodes[i], sn.slot, rec.raw, expects[i])
        except VeilError as e:
            if problems is not None:
                problems.append(e)
            return Silent()
        if got.stored:
            return Accepted()
        if got.current is None:
            return Holds(None)
        try:
            return Holds(parse_record(got.current, sn.slot))
        except IntegrityError:
            return Silent()  # a node lying in its 409 counts as no answer

    idxs = sorted(expects)
    return dict(zip(idxs, _parallel(idxs, one), strict=True))  # type: ignore[arg-type]


Build = Callable[[Attempt], tuple[bytes, list[SlotRecord]]]


def write_slot(net: Network, sn: SlotNodes, key: SigningKey, latest: Latest, build: Build,
               rng: random.Random | None = None) -> Done:  # fmt: skip
    """Write a new version built by ``build(attempt)`` -> (payload, heads it merged), retried
    against whatever won each lost race; WriteConflictError (from ``build`` or after
    MAX_ATTEMPTS) or UnavailableError when nothing was saved."""
    rng = rng or random.Random()
    cas = CasWrite(sn.n, sn.happy, latest.record, latest.anchor, max_attempts=MAX_ATTEMPTS)
    att = cas.attempt()
    while True:
        payload, merged = build(att)
        if merged:
            att = cas.merge(att, merged)
        rec = sign_record(key, att.seq, payload, att.chain, att.merged)
        problems: list[VeilError] = []
        replies = put_everywhere(net, sn, rec, dict(att.expects), problems)
        if len(problems) == sn.n and all(isinstance(e, NotFoundError) for e in problems):
            raise UnavailableError("none of the folder's nodes keeps folders (they do not run the `mutable` role; "
                                   "a devnet made before folders existed needs a fresh `veil devnet up`)")
        try:
            res = cas.feed(rec, replies)
        except UnavailableError as e:
            detail = "; ".join(dict.fromkeys(str(p) for p in problems[-3:]))
            raise UnavailableError(f"{e}" + (f" ({detail})" if detail else "")) from e
        if isinstance(res, Done):
            return res
        att = res
        time.sleep(backoff(cas.attempts, rng))


def census(net: Network, sn: SlotNodes) -> SlotRead:
    """Every node's answer (for check and repair): who holds the current version, who does not."""
    held: dict[int, bytes | None] = {}
    problems: list[str] = []
    _get(net, sn, list(range(sn.n)), None, held, problems)
    latest = pick_latest(held, sn.slot, sn.n, sn.happy)
    return SlotRead(latest, held, problems)


def heal_slot(net: Network, sn: SlotNodes, got: SlotRead) -> int:
    """Put the current version on the slot's nodes that answered without it (each fast-forwards
    from what it holds, if the version names that as a parent); how many now hold it."""
    rec = got.latest.record
    if rec is None:
        return 0
    expects: dict[int, Checkstring | None] = {}
    for i, raw in got.held.items():
        if i in got.latest.holders:
            continue
        try:
            expects[i] = parse_record(raw, sn.slot).checkstring if raw is not None else None
        except IntegrityError:
            expects[i] = None  # it answered garbage; an empty node takes any version
    replies = put_everywhere(net, sn, rec, expects)
    return len(got.latest.holders) + sum(1 for r in replies.values() if isinstance(r, Accepted))
