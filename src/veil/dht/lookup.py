"""The iterative Kademlia lookup as a state machine, over ``paths`` disjoint paths.

The caller asks ``next_queries()`` for contacts to send a FIND_* request to, and feeds back
``on_reply(node_id, contacts)`` or ``on_failure(node_id)``; no I/O happens here. Each path keeps
its own shortlist sorted by XOR distance and queries the nearest not-yet-asked contacts, at
most ``ceil(alpha / paths)`` at a time, until the ``k`` nearest contacts it knows have all
answered (or failed). ``alpha`` is thus the total number of requests in flight.

Disjoint paths (S/Kademlia, Baumgart & Mies 2007): the seeds are dealt out to the paths, each
path follows only what its own repliers tell it, and no node is queried by two paths. A node
that lies in its FIND_NODE answers (returning only colluders) can capture the paths it is on,
but not a path whose nodes are all honest, so the honest neighbourhood of the target is still
reached when any one path stays honest. ``closest()`` merges what every path heard;
``path_results()`` gives each path's own answer for callers that must not let one path
outvote another (docs/specs/dht.md, "Disjoint paths").

A contact (seed or answer) whose id does not solve the network's id puzzle (``id_bits``,
veil.crypto.idpuzzle) is dropped on arrival and counted in ``refused``: ground ids that skip
the puzzle cannot even be asked.
Imports from: veil.crypto, veil.dht.ids.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from veil.crypto.idpuzzle import valid_id
from veil.dht.ids import Contact, to_int

_NEW, _INFLIGHT, _DONE, _FAILED = range(4)


class _Cand:
    __slots__ = ("contact", "depth", "state")

    def __init__(self, contact: Contact, depth: int) -> None:
        self.contact = contact
        self.depth = depth
        self.state = _NEW


class _Path:
    __slots__ = ("by_dist", "inflight", "order")

    def __init__(self) -> None:
        self.by_dist: dict[int, _Cand] = {}  # XOR distance to the target -> candidate
        self.order: list[int] = []  # the same distances, sorted
        self.inflight = 0


class Lookup:
    """Find the ``k`` nodes nearest to ``target``."""

    def __init__(
        self,
        target: bytes,
        seeds: Iterable[Contact],
        *,
        k: int = 20,
        alpha: int = 3,
        paths: int = 1,
        exclude: bytes | None = None,
        id_bits: int = 0,
    ) -> None:
        if k < 1 or alpha < 1 or paths < 1 or id_bits < 0:
            raise ValueError("bad lookup parameters")
        self.id_bits = id_bits
        self.refused = 0
        self.target = bytes(target)
        self._t = to_int(self.target)
        self.k = k
        self.per_path = -(-alpha // paths)
        self._exclude = to_int(exclude) if exclude is not None else None
        self._owner: dict[int, int] = {}  # distance -> the path that queried it
        self._paths: list[_Path] = []
        seed_list = [c for c in seeds if c.key != self._exclude and self._admit(c)]
        seed_list.sort(key=lambda c: c.key ^ self._t)
        n = max(1, min(paths, len(seed_list)))
        self._paths = [_Path() for _ in range(n)]
        for i, c in enumerate(seed_list):
            self._add(self._paths[i % n], c, 1)
        self.queried = 0
        self.failures = 0
        self.stopped = False

    # -- driving ------------------------------------------------------------------------

    def next_queries(self) -> list[Contact]:
        """Contacts to query now; each is then in flight until its reply or failure is reported."""
        if self.stopped:
            return []
        out: list[Contact] = []
        k = self.k
        for pi, p in enumerate(self._paths):
            if p.inflight >= self.per_path:
                continue
            seen = 0
            for d in p.order:
                c = p.by_dist[d]
                st = c.state
                if st == _FAILED:
                    continue
                if st == _NEW:
                    owner = self._owner.get(d)
                    if owner is not None and owner != pi:
                        continue  # another path asked it: paths stay disjoint
                    c.state = _INFLIGHT
                    self._owner[d] = pi
                    p.inflight += 1
                    self.queried += 1
                    out.append(c.contact)
                    if p.inflight >= self.per_path:
                        break
                seen += 1
                if seen >= k:
                    break
        return out

    def _settle(self, node_id: bytes, state: int) -> tuple[int, _Path, _Cand] | None:
        """Mark the in-flight query to ``node_id`` as answered or failed; None if there is none."""
        d = to_int(node_id) ^ self._t
        pi = self._owner.get(d)
        if pi is None:
            return None
        p = self._paths[pi]
        c = p.by_dist.get(d)
        if c is None or c.state != _INFLIGHT:
            return None
        c.state = state
        p.inflight -= 1
        return pi, p, c

    def on_reply(self, node_id: bytes, contacts: Sequence[Contact]) -> None:
        settled = self._settle(node_id, _DONE)
        if settled is None or self.stopped:
            return
        pi, p, c = settled
        depth = c.depth + 1
        owner = self._owner
        for nc in contacts[: self.k * 2]:
            if nc.key == self._exclude:
                continue
            nd = nc.key ^ self._t
            if nd in p.by_dist:
                continue
            o = owner.get(nd)
            if (o is not None and o != pi) or not self._admit(nc):
                continue
            self._add(p, nc, depth)

    def on_failure(self, node_id: bytes) -> None:
        if self._settle(node_id, _FAILED) is not None:
            self.failures += 1

    def stop(self) -> None:
        """Finish early (the caller has what it wanted); replies still in flight are ignored."""
        self.stopped = True

    @property
    def finished(self) -> bool:
        if self.stopped:
            return True
        for pi, p in enumerate(self._paths):
            if p.inflight:
                return False
            seen = 0
            for d in p.order:
                c = p.by_dist[d]
                if c.state == _FAILED:
                    continue
                if c.state == _NEW:
                    owner = self._owner.get(d)
                    if owner is None or owner == pi:
                        return False
                    continue
                seen += 1
                if seen >= self.k:
                    break
        return True

    @property
    def inflight(self) -> int:
        return sum(p.inflight for p in self._paths)

    # -- results -------------------------------------------------------------------------

    def closest(self) -> list[Contact]:
        """The ``k`` nearest nodes that answered, over all paths, nearest first."""
        done: list[tuple[int, Contact]] = []
        for p in self._paths:
            done.extend((d, c.contact) for d, c in p.by_dist.items() if c.state == _DONE)
        done.sort(key=lambda x: x[0])
        return [c for _, c in done[: self.k]]

    def path_results(self) -> list[list[Contact]]:
        """Each path's own ``k`` nearest answering nodes."""
        out = []
        for p in self._paths:
            out.append([p.by_dist[d].contact for d in p.order if p.by_dist[d].state == _DONE][: self.k])
        return out

    @property
    def hops(self) -> int:
        """Path length to the nearest node that answered: 1 if it was already in our table."""
        best: tuple[int, int] | None = None
        for p in self._paths:
            for d in p.order:
                c = p.by_dist[d]
                if c.state == _DONE:
                    if best is None or d < best[0]:
                        best = (d, c.depth)
                    break
        return 0 if best is None else best[1]

    def _admit(self, c: Contact) -> bool:
        if self.id_bits and not valid_id(c.node_id, self.id_bits):
            self.refused += 1
            return False
        return True

    def _add(self, p: _Path, c: Contact, depth: int) -> None:
        d = c.key ^ self._t
        if d in p.by_dist:
            return
        p.by_dist[d] = _Cand(c, depth)
        bisect.insort(p.order, d)
