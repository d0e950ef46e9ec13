"""`veil sim ...`: the simulations that back Veil's scale claims (veil.sim)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from veil.crypto.idpuzzle import DEFAULT_ID_BITS
from veil.errors import UsageError
from veil.sim.capture import HONEST_KEYS_PER_SECOND


@click.group()
def sim() -> None:
    """Run simulations of the network in one process, on a virtual clock."""


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


@sim.command("dht")
@click.option("--nodes", default=10_000, show_default=True, type=click.IntRange(2), help="Nodes in the network.")
@click.option("--churn", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of nodes killed and replaced during the churn phase (0 skips it).")
@click.option("--lookups", default=1000, show_default=True, type=click.IntRange(1), help="Lookups measured per phase.")
@click.option("--paths", default=3, show_default=True, type=click.IntRange(1, 8), help="Disjoint lookup paths (1 = plain Kademlia).")
@click.option("--liars", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Then measure again with this fraction of nodes lying in every answer (0 skips it).")
@click.option("--collude", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Then measure again with this fraction of nodes colluding from ground positions (S/Kademlia's "
                   "model: they answer with ids ground next to the target), next to the analytic curve.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--wire", is_flag=True, help="Encode and strictly decode every message (slower, checks the wire format too).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sim_dht(
    nodes: int, churn: float, lookups: int, paths: int, liars: float, collude: float, seed: int, wire: bool,
    as_json: bool,
) -> None:
    """Lookups over NODES simulated DHT nodes running the real routing code.

    Prints the lookup success rate (the true nearest live node was found), hops, messages per
    lookup, and the same while a fraction of the nodes is replaced, lies, or colludes from
    ground positions (then also S/Kademlia's analytic success 1 - (1 - (1 - c)^h)^d).
    """
    from veil.sim import dht

    with _progress(not as_json) as bar:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        try:
            res = dht.run(
                nodes=nodes, churn=churn, lookups=lookups, seed=seed, paths=paths, wire=wire, liars=liars,
                progress=report, collude=collude,
            )
        except ValueError as e:
            raise UsageError(str(e)) from e
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
        return
    click.echo(f"{res.nodes} nodes, k={res.k} alpha={res.alpha} paths={res.paths}, seed {res.seed}")
    click.echo(f"  join: {res.join_wall_s:.1f} s wall, {res.join_messages_per_node:.1f} messages per joining node")
    phases = [("stable", res.stable)] + ([(f"churn {res.churn_fraction:.0%}", res.churn)] if res.churn else [])
    phases += [(f"{res.liar_fraction:.0%} liars (nearest honest node on any path)", res.attack)] if res.attack else []
    phases += [(f"{res.collude_fraction:.0%} colluders at ground positions (nearest honest node on any path)",
                res.collusion)] if res.collusion else []
    for name, st in phases:
        assert st is not None
        extra = f", {st.nodes_replaced} nodes replaced" if st.nodes_replaced else ""
        click.echo(
            f"  {name}: {st.lookups} lookups, success {st.success_rate:.2%}, recall@k {st.recall_k:.2%}, "
            f"hops median {st.hops_median:g} p99 {st.hops_p99:g}, messages/lookup mean {st.messages_mean:.1f} "
            f"median {st.messages_median:g}, timeouts/lookup {st.timeouts_per_lookup:.2f}, "
            f"latency median {st.latency_median_s:.2f} s (virtual){extra}"
        )
    if res.collusion:
        c, d = res.collude_fraction, res.paths
        click.echo(
            f"  collusion: simulated {res.collusion.success_rate:.2%}; analytic 1-(1-(1-c)^h)^d with c={c:g}, d={d}: "
            f"{res.analytic_hops:.2%} at h={res.stable.hops_median:g} (median hops), "
            f"{res.analytic_queried:.2%} at h={res.stable.messages_mean / d:.1f} (nodes asked per path), "
            f"{res.analytic_one_path:.2%} at that h with d=1 (the nearest honest node is on one path only)"
        )
    click.echo(f"  total wall time: {res.wall_s:.1f} s")


@sim.command("durability")
@click.option("--nodes", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--files", default=10_000, show_default=True, type=click.IntRange(1))
@click.option("--years", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--failure-rate", default=0.1, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Probability that a node fails within a year (it is replaced by an empty node).")
@click.option("-k", "k", default=3, show_default=True, type=click.IntRange(1), help="Shares needed to read a file.")
@click.option("-n", "n", default=10, show_default=True, type=click.IntRange(1), help="Shares stored per file.")
@click.option("--repair-threshold", default=7, show_default=True, type=click.IntRange(1),
              help="Repair a file when fewer healthy shares remain.")
@click.option("--check-interval-hours", default=24.0, show_default=True, type=click.FloatRange(0))
@click.option("--repair-hours", default=1.0, show_default=True, type=click.FloatRange(0))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--attacker-cpu-hours", type=click.FloatRange(0), default=None,
              help="Also price capturing k of a file's n shares by grinding ids, for an attacker with this "
                   "budget, before and after ids cost work (docs/specs/dht.md).")
@click.option("--id-bits", type=click.IntRange(0, 40), default=DEFAULT_ID_BITS, show_default=True,
              help="With --attacker-cpu-hours: the network's node-id puzzle.")
@click.option("--keys-per-second", type=click.FloatRange(0, min_open=True), default=HONEST_KEYS_PER_SECOND,
              show_default=True, help="With --attacker-cpu-hours: the attacker's key generations per core-second "
                                      "(the default is grind_key measured on this machine; a tuned grinder is faster).")
@click.option("--attacker-subnets", type=click.IntRange(1), default=None,
              help="With --attacker-cpu-hours: the address blocks (/24) the attacker has (default: as many as it needs).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sim_durability(
    nodes: int, files: int, years: float, failure_rate: float, k: int, n: int, repair_threshold: int,
    check_interval_hours: float, repair_hours: float, seed: int, attacker_cpu_hours: float | None, id_bits: int,
    keys_per_second: float, attacker_subnets: int | None, as_json: bool,
) -> None:
    """Files lost to node failures over YEARS, with and without repair; with --attacker-cpu-hours,
    also what capturing k of one file's n shares costs an attacker who grinds ids."""
    from veil.sim import capture, durability

    try:
        res = durability.run(
            nodes=nodes, files=files, years=years, failure_rate=failure_rate, k=k, n=n,
            repair_threshold=repair_threshold, check_interval_hours=check_interval_hours,
            repair_hours=repair_hours, seed=seed,
        )
        cap = None if attacker_cpu_hours is None else capture.run(
            nodes=nodes, k=k, n=n, id_bits=id_bits, keys_per_second=keys_per_second,
            budget_cpu_hours=attacker_cpu_hours, attacker_subnets=attacker_subnets, seed=seed,
        )
    except ValueError as e:
        raise UsageError(str(e)) from e
    if as_json:
        click.echo(json.dumps({**res.to_dict(), **({"capture": cap.to_dict()} if cap else {})}, indent=2))
        return
    click.echo(
        f"{res.nodes} nodes, {res.files} files, {res.k}-of-{res.n}, {res.years:g} year(s), "
        f"yearly node failure probability {res.failure_rate:g}: {res.node_failures} node failures"
    )
    w, r = res.without_repair, res.with_repair
    click.echo(f"  without repair: {w.files_lost} files lost ({w.files_lost / res.files:.3%})")
    click.echo(
        f"  with repair below {res.repair_threshold} shares (checked every {res.check_interval_hours:g} h): "
        f"{r.files_lost} files lost ({r.files_lost / res.files:.3%}), {r.repairs} repairs, "
        f"{r.shares_recreated} shares re-created"
    )
    if cap is not None:
        _print_capture(cap)


def _print_capture(cap: Any) -> None:
    click.echo(
        f"attacker capturing {cap.k} of {cap.n} shares of a chosen file among {cap.nodes} honest nodes "
        f"(median of {cap.trials} files), {cap.keys_per_second:,.0f} keys/s per core, budget {cap.budget_cpu_hours:g} CPU-hours:"
    )
    for label, rows in (("before (free ids, no families)", cap.before), (f"after ({cap.id_bits}-bit id puzzle, one share per family)", cap.after)):
        click.echo(f"  {label}:")
        for c in rows:
            click.echo(
                f"    {c.mode}: {c.ids_median:,.0f} ids = {c.keygens:.3g} key generations = {c.cpu_hours:.3g} CPU-hours, "
                f"{c.subnets} distinct /24 network(s); the budget captures {c.files_in_budget:.3g} files"
            )
    click.echo(
        f"  eclipsing one DHT key (20 ids nearer than every honest node): {cap.eclipse_before_cpu_hours:.3g} CPU-hours "
        f"before, {cap.eclipse_after_cpu_hours:.3g} after; an honest node pays {cap.honest_id_cpu_seconds:.3g} CPU-seconds "
        "once for its id"
    )
    for note in cap.notes:
        click.echo(f"  note: {note}")


@sim.command("economy")
@click.option("--budget", default="1000", show_default=True, help="The farmer's budget in VEIL.")
@click.option("--pool", default="100000000", show_default=True, help="The allowance pool in VEIL.")
@click.option("--honest-nodes", default=100, show_default=True, type=click.IntRange(0), help="Honest bonded nodes.")
@click.option("--interest", default=0.01, show_default=True, type=click.FloatRange(0, 1),
              help="What locked money could earn elsewhere per epoch (the farmer's cost of capital).")
@click.option("--node-disk", default="1TB", show_default=True, help="Each node's disk, for the storage attack.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sim_economy(budget: str, pool: str, honest_nodes: int, interest: float, node_disk: str, as_json: bool) -> None:
    """What a farmer with BUDGET pulls out of the free-download pool per epoch, before and after
    the stake and bonded-node rules (payments.md, "Free tier economics"), and how much of every
    node's disk the same budget fills with open and with ticket storage admission."""
    from veil.format.textparse import parse_size
    from veil.ledger.amount import format_amount, parse_amount
    from veil.sim import economy

    res = economy.run(parse_amount(budget), parse_amount(pool), honest_nodes, interest, node_disk=parse_size(node_disk))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    for name in ("before", "after"):
        o = res[name]
        drain = f"drains the pool in {o['epochs_to_drain']:.1f} epochs" if o["epochs_to_drain"] else "never drains it"
        click.echo(f"{name:>6}: {o['accounts']:,} farmed accounts draw {format_amount(o['pool_drawn'])} VEIL/epoch "
                   f"for {format_amount(o['cost'])} VEIL/epoch: profit {format_amount(max(o['profit'], 0)) if o['profit'] >= 0 else '-' + format_amount(-o['profit'])} VEIL "
                   f"({o['roi']:.1%} of the budget per epoch); {drain}")  # fmt: skip
    click.echo(f"honest bonded node earns {res['honest_node_roi']:.1%} of its bond per epoch from the pool "
               "(the farmer can do no better than that: farming is just bonding)")
    so, st = res["storage_open"], res["storage_ticket"]
    click.echo(f"storage, open admission: fills {so['filled']:.0%} of every node's {node_disk} disk for 0 VEIL")
    click.echo(f"storage, ticket admission: fills {st['filled']:.2%} of every node's disk ({st['bytes_per_node']:,} "
               f"bytes on each of {honest_nodes} nodes), {format_amount(st['locked'])} VEIL locked, "
               f"{format_amount(st['cost'])} VEIL/epoch; filling every disk locks "
               f"{format_amount(st['stake_to_fill'])} VEIL, whatever the number of nodes (quota is counted per node)")  # fmt: skip


@sim.command("ledger")
@click.option("--accounts", default=1_000_000, show_default=True, type=click.IntRange(1000),
              help="Accounts in the state (10000000 takes a few minutes and about 1 GB of disk).")
@click.option("--lookups", default=200_000, show_default=True, type=click.IntRange(1))
@click.option("--transfers", default=20_000, show_default=True, type=click.IntRange(1),
              help="Signed transfers applied into blocks, at N accounts and on an empty store.")
@click.option("--block", default=500, show_default=True, type=click.IntRange(1, 10_000), help="Transfers per block.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the SQLite file here and keep it (default: a temporary directory, removed).")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sim_ledger(accounts: int, lookups: int, transfers: int, block: int, workdir: Path | None, seed: int,
               as_json: bool) -> None:  # fmt: skip
    """The ledger state at ACCOUNTS accounts: a real SQLite file built by the ledger store, its size
    on disk, account lookups/s, and signed transfers/s applied into blocks (synchronous=FULL)."""
    import tempfile

    from veil.sim import ledger_state

    with _progress(not as_json) as bar, tempfile.TemporaryDirectory(prefix="veil-sim-ledger-") as tmp:
        d = workdir or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        if (d / "state.db").exists():
            raise UsageError(f"{d / 'state.db'} exists already: pick an empty --dir")
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        res = ledger_state.run(accounts, d, lookups=lookups, transfers=transfers, block=block, seed=seed,
                               progress=report)  # fmt: skip
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
        return
    click.echo(f"{res.accounts:,} accounts: built in {res.build_s:.1f} s ({res.build_accounts_per_s:,.0f}/s, batched)")
    click.echo(f"  on disk: {res.bytes_on_disk / 1e6:,.1f} MB ({res.bytes_per_account:.1f} B per account)")
    click.echo(f"  lookups: {res.lookup_per_s:,.0f}/s ({res.lookup_us:.1f} µs each, {res.lookups:,} random accounts)")
    click.echo(f"  apply:   {res.apply_per_s:,.0f} signed transfers/s into blocks of {res.block_size} "
               f"(synchronous=FULL) = {res.apply_ratio:.0%} of the same machine on an empty store "
               f"({res.apply_per_s_small:,.0f}/s)")  # fmt: skip


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise UsageError(f"{what}: a comma-separated list of numbers, e.g. 0,0.1,0.5") from e


@sim.command("shards")
@click.option("--shards", "shard_list", default="1,2,4,8,16,32", show_default=True,
              help="Shard counts to simulate (comma-separated).")
@click.option("--cross", "cross_list", default="0,0.1,0.5,0.9", show_default=True,
              help="Shares of transfers whose payee is in another shard (comma-separated).")
@click.option("--rate", type=click.FloatRange(0, min_open=True), default=None,
              help="One cluster's transfers/s (e.g. the cluster figure of `veil bench ledger`); default: measure "
                   "the real ledger machine on this machine now.")
@click.option("--block-ms", default=100.0, show_default=True, type=click.FloatRange(1, 10_000), help="Block interval.")
@click.option("--in-cost", default=1.0, show_default=True, type=click.FloatRange(0.01, 10),
              help="Work of crediting an inbound cross-shard message, in transfers (1: as much as a transfer).")
@click.option("--blocks", default=80, show_default=True, type=click.IntRange(10, 10_000), help="Blocks simulated.")
@click.option("--load", default=0.9, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Offered load, as a share of the ceiling, at which latency is measured.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sim_shards(shard_list: str, cross_list: str, rate: float | None, block_ms: float, in_cost: float, blocks: int,
               load: float, seed: int, as_json: bool) -> None:  # fmt: skip
    """The ledger sharded by account prefix (docs/specs/ledger-scale.md): aggregate transfers/s
    against the shard count, with cross-shard transfers done as TON-style messages, and their
    latency; parameterised by one cluster's measured rate."""
    from veil.sim import shards

    counts = [int(x) for x in _floats(shard_list, "--shards")]
    measured = rate is None
    if rate is None:
        rate = _measure_rate()
    try:
        res = shards.run(rate, counts, _floats(cross_list, "--cross"), block_s=block_ms / 1000, in_cost=in_cost,
                         blocks=blocks, seed=seed, load=load)  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from e
    if as_json:
        click.echo(json.dumps({**res.to_dict(), "rate_measured": measured}, indent=2))
        return
    how = "measured now (ledger machine alone, one core)" if measured else "given"
    click.echo(f"one cluster: {rate:,.0f} transfers/s ({how}); block {block_ms:g} ms; inbound message cost {in_cost:g}")
    click.echo(f"{'shards':>6} {'cross':>5} {'transfers/s':>13} {'x one':>7} {'model S*r/(1+x*c)':>18} "
               f"{'local p50/p99 ms':>17} {'cross p50/p99 ms':>17}  conserved  (latency at {load:.0%} load)")  # fmt: skip
    for p in res.points:
        cross = f"{p.p50_cross_ms:,.0f}/{p.p99_cross_ms:,.0f}" if p.cross > 0 else "-"
        click.echo(f"{p.shards:>6} {p.cross:>5.2f} {p.throughput:>13,.0f} {p.ratio_to_one:>6.1f}x {p.analytic:>18,.0f} "
                   f"{p.p50_local_ms:>8,.0f}/{p.p99_local_ms:<8,.0f} {cross:>17}  {'yes' if p.conserved else 'NO'}")  # fmt: skip


def _measure_rate() -> float:
    """Signed transfers/s the real ledger machine applies into blocks here (SQLite, synchronous=FULL)."""
    import tempfile
    import time

    from veil.crypto.sign import SigningKey
    from veil.ledger import tx as txm
    from veil.ledger.address import address_of
    from veil.ledger.genesis import make_genesis
    from veil.ledger.params import Params
    from veil.ledger.store import LedgerStore
    from veil.node.validator_core import LedgerMachine, txs_entry

    senders = [SigningKey.generate() for _ in range(50)]
    g = make_genesis(Params(chain_id="sim-shards"), int(time.time()) - 5, SigningKey.generate().public_key,
                     {address_of(s.public_key): 10**15 for s in senders}, 0)  # fmt: skip
    to = address_of(SigningKey.generate().public_key)
    raws = [txm.transfer(s, g.chain, j, 1, to, 1) for j in range(40) for s in senders]
    with tempfile.TemporaryDirectory(prefix="veil-sim-shards-") as d:
        store = LedgerStore(Path(d) / "rate.db")
        store.init_genesis(g)
        m = LedgerMachine(store, SigningKey.generate())
        t = time.perf_counter()
        for i in range(0, len(raws), 500):
            m.apply(i // 500 + 1, txs_entry(g.time + 1, raws[i : i + 500]))
        el = time.perf_counter() - t
        store.close()
    return len(raws) / el


commands = [sim]
