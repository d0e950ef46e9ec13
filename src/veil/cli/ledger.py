"""`veil ledger blocks|tx|verify|info|genesis`: look at and check the Bitcache chain."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress

from veil.errors import LedgerError, UnavailableError, UsageError, VeilError
from veil.format.textparse import parse_size
from veil.ledger.amount import parse_amount
from veil.ledger.block import decode_header
from veil.ledger.chain import Replayer
from veil.ledger.params import Params
from veil.ledger.tx import decode_tx

from .common import err_console
from .jsonout import emit, json_option
from .ledger_opts import addr_text, connect, money, parse_duration, validator_option, when
from .wallet import describe


@click.group()
def ledger() -> None:
    """The Bitcache ledger: blocks, transactions, full verification."""


@ledger.command()
@json_option
@validator_option
def info(as_json: bool, validator: str | None, network_path: Path | None) -> None:
    """Chain id, height, state hash, supply and network parameters."""
    c = connect(validator, network_path)
    try:
        i = c.info()
    finally:
        c.close()
    p = i["params"]
    if as_json:
        emit({"chain": i["chain"], "genesis": i["genesis_hash"].hex(), "height": i["height"], "final": i["final"],
              "head_hash": i["head_hash"].hex(), "state_hash": i["state_hash"].hex(), "minted": i["minted"],
              "pool": i["pool"], "bonded": i["bonded"], "validators": len(i["validators"]),
              "params": {k: v.hex() if isinstance(v, bytes) else v for k, v in p.items()}})  # fmt: skip
        return
    click.echo(f"chain:      {i['chain']} (genesis {i['genesis_hash'].hex()[:16]})")
    click.echo(f"height:     {i['height']}  (final {i['final']})")
    click.echo(f"state hash: {i['state_hash'].hex()}")
    click.echo(f"supply:     {money(i['minted'])} minted, {money(i['pool'])} in the allowance pool")
    click.echo(
        f"params:     allowance {p['allowance_bytes']} bytes per {p['epoch_seconds']}s epoch, "
        f"{money(p['price_per_gb'])}/GB, uploader share {p['uploader_share_bp'] / 100:g}%, min fee {money(p['min_fee'])}"
    )


@ledger.command()
@click.option("--from", "start", type=int, default=None, help="First height (default: the last --limit blocks).")
@click.option("--limit", default=20, show_default=True)
@validator_option
def blocks(start: int | None, limit: int, validator: str | None, network_path: Path | None) -> None:
    """List blocks: height, time, transactions, hash."""
    c = connect(validator, network_path)
    try:
        if start is None:
            start = max(1, int(c.info()["height"]) - limit + 1)
        headers = [decode_header(h) for h in c.headers(start, min(limit, 1000))]
    finally:
        c.close()
    if not headers:
        click.echo("no blocks yet")
    for h in headers:
        click.echo(f"{h.height:>7}  {when(h.time)}  {h.ntx:>6} txs  {h.hash.hex()}")


@ledger.command()
@click.argument("txid")
@validator_option
def tx(txid: str, validator: str | None, network_path: Path | None) -> None:
    """Show transaction TXID and whether it is in a block."""
    try:
        tid = bytes.fromhex(txid)
    except ValueError:
        tid = b""
    if len(tid) != 32:
        raise UsageError("a transaction id is 64 hex characters")
    c = connect(validator, network_path)
    try:
        st = c.tx(tid)
    finally:
        c.close()
    if st.get("status") == "unknown":
        raise LedgerError("the validator does not know this transaction", "unknown_tx")
    t = decode_tx(st["tx"])
    where = f"block {st['height']}, index {st['index']}" if st["status"] == "committed" else "pending"
    click.echo(f"status: {st['status']} ({where})")
    click.echo(f"type:   {t.kind}")
    click.echo(f"from:   {addr_text(t.sender)}  nonce {t.nonce}  fee {money(t.fee)}")
    click.echo(f"what:   {describe(t.raw)}")


@ledger.command()
@click.option("--quiet", is_flag=True, help="Print only the final line.")
@validator_option
def verify(quiet: bool, validator: str | None, network_path: Path | None) -> None:
    """Replay every block from genesis, checking every certificate, signature, balance and hash.

    The genesis hash must be pinned (--genesis, $VEIL_GENESIS or the network file), so the
    validator asked cannot feed a chain of its own making. Blocks are checked against the
    validator set in force at their height; the newest blocks still gathering signatures are
    left for the next run."""
    c = connect(validator, network_path)
    try:
        if c.genesis_hash is None:
            raise UsageError("pin the chain: pass --genesis HASH (or set VEIL_GENESIS); "
                             "without it a validator could serve a genesis of its own")  # fmt: skip
        g = c.genesis()
        info = c.info()
        head = int(info["final"])
        r = Replayer(g)
        with Progress(console=err_console, transient=True, disable=quiet or not err_console.is_terminal) as prog:
            task = prog.add_task("replaying", total=head)
            for h in range(1, head + 1):
                blk = c.block(h)
                if blk is None:
                    raise LedgerError(f"the validator has no block {h} below its final height {head}", "bad_block")
                r.apply_block(*blk)
                prog.advance(task)
        r.check_supply()
        tip = int(info["height"]) - head
    finally:
        c.close()
    if int(info["height"]) == r.height and info["state_hash"] != r.state.state_hash:
        raise LedgerError("replayed state hash differs from the validator's", "bad_state")
    extra = f"; {tip} newest block(s) still gathering signatures" if tip > 0 else ""
    extra += f"; unchecked commitments: {', '.join(sorted(r.unchecked_roots))}" if r.unchecked_roots else ""
    click.echo(
        f"verified {r.height} blocks, {r.ntx} transactions, {r.signatures} signatures, "
        f"{r.set_changes} validator set change(s); supply {money(g.minted)} intact; "
        f"state hash {r.state.state_hash.hex()}{extra}"
    )


@ledger.command()
@validator_option
def status(validator: str | None, network_path: Path | None) -> None:
    """The validator cluster: members, leader, term, height and lag of each member."""
    c = connect(validator, network_path)
    rows = []
    try:
        for i, (host, port, pin) in enumerate(c.endpoints):
            try:
                rows.append((f"{host}:{port}", pin, c.cluster(i)))
            except VeilError as e:
                rows.append((f"{host}:{port}", pin, {"error": str(e)}))
    finally:
        c.close()
    top = max((int(r["height"]) for _, _, r in rows if "height" in r), default=0)
    up = sum(1 for _, _, r in rows if "height" in r)
    leaders = {r.get("leader") for _, _, r in rows if r.get("leader")}
    click.echo(f"{len(rows)} validators, {up} reachable; leader {', '.join(sorted(map(str, leaders))) or 'none'}")
    for addr, pin, r in rows:
        if "error" in r:
            click.echo(f"  {addr:<21} {pin.hex()[:16]}  down ({r['error'][:80]})")
            continue
        click.echo(f"  {addr:<21} {pin.hex()[:16]}  {r['role']:<9} term {r['term']:<4} height {r['height']:<7} "
                   f"final {r['final']:<7} lag {top - int(r['height'])}  raft {r['raft']}")  # fmt: skip
    if up * 2 <= len(rows):
        raise UnavailableError(f"ledger unavailable: {up} of {len(rows)} validators reachable, {len(rows) // 2 + 1} needed")
@ledger.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The validator node's data directory.")
@click.option("--chain-id", default="veil-devnet", show_default=True)
@click.option("--faucet", "faucet_amount", default="1000000000", show_default=True, help="Minted to the faucet key.")
@click.option("--pool", default="100000000", show_default=True, help="Minted into the allowance pool.")
@click.option("--allowance", default="100GB", show_default=True, help="Free download bytes per account per epoch.")
@click.option("--epoch", default="30d", show_default=True, help="Epoch length.")
@click.option("--price-per-gb", default="0.1", show_default=True, help="What the pool pays nodes per free GB.")
@click.option("--uploader-share", default=2000, show_default=True, help="Basis points of paid downloads owed to uploaders.")
@click.option("--challenge", default="1d", show_default=True, help="Challenge window after a payer's unilateral close.")
@click.option("--api", required=True, help="HOST:PORT the validator will serve its ledger API on (its --listen).")
@click.option("--raft", required=True, help="HOST:PORT of its Raft (replication) endpoint.")
def genesis(
    data_dir: Path, chain_id: str, faucet_amount: str, pool: str, allowance: str, epoch: str,
    price_per_gb: str, uploader_share: int, challenge: str, api: str, raft: str,
) -> None:  # fmt: skip
    """Create the genesis for a new chain whose validator is the node at --data."""
    from veil.devnet.ledger import make_node_genesis

    params = Params(
        chain_id=chain_id,
        allowance_bytes=parse_size(allowance),
        epoch_seconds=parse_duration(epoch),
        price_per_gb=parse_amount(price_per_gb),
        uploader_share_bp=uploader_share,
        challenge_seconds=parse_duration(challenge),
    )
    g = make_node_genesis(data_dir, params, parse_amount(faucet_amount), parse_amount(pool), api=api, raft=raft)
    click.echo(f"genesis {g.hash.hex()} for network {chain_id}")
    click.echo(f"validator {g.validators.members[0].pub.hex()[:16]}… raft {raft}, api {api}; cluster secret in "
               f"{data_dir / 'ledger' / 'cluster.key'}")  # fmt: skip
    click.echo(f"faucet key in {data_dir / 'ledger' / 'faucet.key'} holding {money(parse_amount(faucet_amount))}")


commands = [ledger]
