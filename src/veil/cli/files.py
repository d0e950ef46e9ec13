"""`veil put`, `veil get`, `veil info`, `veil check`, `veil repair`: files in and out of the network."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from veil.client import check as check_mod
from veil.client import repair as repair_mod
from veil.client.download import download, open_file
from veil.client.name_targets import read_cap_of
from veil.client.output import AtomicOutput
from veil.crypto import labels
from veil.crypto.hashes import tagged_hash
from veil.errors import UsageError, VeilError
from veil.format.caps import parse_verify_cap
from veil.format.remote_text import clean

from .common import PAY_WALLET_HELP, WALLET_HELP, anon_options, human, network_option, open_network
from .jsonout import emit, json_option


def _anon_for_folders(anon: bool | None, hops: int | None) -> None:
    """Folder commands (-r) open their own network, from the environment: hand --anon/--hops on."""
    if anon is not None:
        os.environ["VEIL_ANON"] = "1" if anon else "0"
    if hops is not None:
        os.environ["VEIL_HOPS"] = str(hops)


def _warn(lines: list[str]) -> None:
    for w in lines:
        click.echo(f"veil: warning: {clean(w)}", err=True)


@click.command()
@click.argument("files", nargs=-1, metavar="FILE...")
@click.option("-r", "--recursive", is_flag=True, help="FILE is a directory: upload the tree as a folder.")
@click.option("--to", "to", default=None, metavar="FOLDER[/path]",
              help="With -r: store the tree as FOLDER/path (default name: the directory's) instead of a new folder.")
@click.option("--name", default=None, help="With `-` (standard input): the name stored with the file (default: stdin).")
@click.option("-k", "k", type=int, default=3, show_default=True, help="Shares needed to read the file.")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Shares made.")
@click.option("--happy", type=int, default=None, help="Distinct nodes that must hold shares (default: min(n, k+4)).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the read cap.")
@json_option
@click.option("--payout", default=None, metavar="ADDR",
              help="Address owed the uploader's share of paid downloads, or 'wallet' for your wallet's "
                   "(it is public: it links your uploads). Default: none, or [payments] payout / $VEIL_PAYOUT.")
@click.option("--lease", "lease_days", type=int, default=None, metavar="DAYS",
              help="Pay the nodes holding the shares to keep them DAYS days (escrow, audited).")
@click.option("--lease-auditor", default=None, metavar="leader|ADDR",
              help="With --lease: who besides you may audit the leases and move a failed node's to the share's "
                   "new holder, the repair's cost paid back from the escrow: 'leader' (the node expected to lead "
                   "the file's repair) or an address.")
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=WALLET_HELP)
@anon_options
@network_option
def put(files: tuple[str, ...], recursive: bool, to: str | None, name: str | None, k: int, n: int,
        happy: int | None, quiet: bool, as_json: bool, payout: str | None, lease_days: int | None,
        lease_auditor: str | None, wallet_path: Path | None, network_path: Path | None, anon: bool | None,
        hops: int | None) -> None:  # fmt: skip
    """Encrypt each FILE, erasure-code it k-of-n and upload the shares; print its read cap and share link.

    FILE may be - for standard input (name it with --name). A summary line (size, time, speed,
    which nodes hold the shares) goes to stderr. With -r, upload the directory FILE as a folder
    (many files at once, one progress bar) and print the folder's caps and link."""
    from .pay_opts import payout_address
    from .put import check_sources, put_one
    from .signer import ticket_signer

    if recursive:
        _anon_for_folders(anon, hops)
        from .trees import put_r

        if payout is not None or lease_days is not None:
            raise UsageError("--payout and --lease are not supported with -r yet")
        if len(files) != 1 or name is not None or as_json:
            raise UsageError("-r takes one directory (and no --name or --json yet)")
        put_r(Path(files[0]), to, quiet, network_path, k, n, happy, wallet_path)
        return
    if lease_auditor is not None and lease_days is None:
        raise UsageError("--lease-auditor needs --lease DAYS")
    if lease_auditor is not None and lease_auditor != "leader":
        from veil.ledger.address import decode_address

        decode_address(lease_auditor)  # a bad address is refused before anything is uploaded
    if to is not None:
        raise UsageError("--to needs -r (a single file is linked into a folder with `veil ln CAP FOLDER/name`)")
    check_sources(files, name)
    net = open_network(network_path, anon, hops)
    if lease_days is not None and net.anon is not None:
        raise UsageError("--lease talks to the nodes directly; it is not available with --anon yet")
    net.tickets = ticket_signer(wallet_path, net)  # nodes that admit by ticket: signed by the wallet
    payout_addr = payout_address(payout, wallet_path)
    for source in files:
        res = put_one(net, source, name, quiet, as_json, k=k, n=n, happy=happy, payout=payout_addr)
        _warn(res.warnings + net.warnings())
        if lease_days is not None:
            from .lease import lease_after_upload

            lease_after_upload(net, res, lease_days, wallet_path, quiet or as_json, lease_auditor)


def _parse_range(text: str) -> tuple[int, int]:
    a, sep, b = text.partition("-")
    if not sep or not a.isdigit() or (b and not b.isdigit()):
        raise UsageError(f"bad range {text!r}: use START-END (bytes, END exclusive; END may be left out)")
    if b and int(b) < int(a):
        raise UsageError(f"bad range {text!r}: END is before START (the range is reversed)")
    return int(a), int(b) if b else 2**62


@click.command()
@click.argument("cap")
@click.option("-o", "--output", default=None, help="Where to write ('-' for stdout; default: the file's name).")
@click.option("-r", "--recursive", is_flag=True, help="CAP is a FOLDER[/path]: download the tree into -o DIR.")
@click.option("--version", "seq", type=int, default=None, metavar="N",
              help="With -r: download version N of the folder (`veil ls --versions`).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--range", "byte_range", default=None, help="Fetch only bytes START-END (END exclusive).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@json_option
@click.option("--max-spend", default=None, metavar="AMOUNT",
              help="Most VEIL to spend past the free allowance (default: [payments] max_spend in config.toml, else 1).")
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=PAY_WALLET_HELP)
@anon_options
@network_option
def get(cap: str, output: str | None, recursive: bool, seq: int | None, force: bool, byte_range: str | None,
        quiet: bool, as_json: bool, max_spend: str | None, wallet_path: Path | None, network_path: Path | None,
        anon: bool | None, hops: int | None) -> None:  # fmt: skip
    """Download, verify and decrypt the file behind CAP (a read cap, a share link, or a name:
    alice.veil for its file record, alice.veil/docs/report.pdf for a file in its site).

    With -r, download the folder FOLDER[/path] into -o DIR (names checked: nothing is written
    outside DIR). Nodes that charge are paid from your free allowance first, then from channel deposits."""
    from veil.client.payer import stop_reason

    from .pay_opts import download_bar, make_payer, spend_summary

    if recursive:
        _anon_for_folders(anon, hops)
        from .trees import get_r

        get_r(cap, output, force, quiet, seq, network_path)
        return
    if seq is not None:
        raise UsageError("--version needs -r (a folder); a file cap names one immutable version")
    if as_json and output == "-":
        raise UsageError("--json prints to stdout, where -o - writes the file: name an output file")

    rng = _parse_range(byte_range) if byte_range else None
    net = open_network(network_path, anon, hops)
    rc = read_cap_of(cap, net, network_path)  # a cap, a link, or a name (alice.veil[/path])
    meta: dict[str, Any] = {}
    if output is None:
        _, meta = open_file(net, rc)
        output = os.path.basename(str(meta["name"])) or "veil-download"
        if output in (".", ".."):
            output = "veil-download"
    # A whole file to a path resumes from the bytes an interrupted run left verified (client/output.py).
    resume = None if rng is not None else tagged_hash(labels.DOWNLOAD_RESUME, rc.to_string().encode()).hex()
    sink = AtomicOutput(output, force, resume)
    payer = make_payer(net, max_spend, wallet_path)
    t0 = time.monotonic()
    try:
        with sink as f, download_bar("downloading", quiet or as_json or output == "-", payer) as bar:
            if sink.offset:
                rng = (sink.offset, 2**62)
                if not quiet and not as_json:
                    click.echo(f"{output}: resuming after {human(sink.offset)} already verified", err=True)
            res = download(net, rc, f, rng, progress=bar, payer=payer, on_meta=lambda _m, size: bar.set_total(size))
    except VeilError as e:
        raise stop_reason(payer, e) from e
    finally:
        if payer is not None:
            payer.close()
    _warn(res.warnings + net.warnings())
    if as_json:
        emit({"path": output, "name": clean(res.meta["name"]), "type": clean(res.meta["type"]),
              "size": res.meta["size"], "written": res.written, "resumed_from": sink.offset,
              "seconds": round(time.monotonic() - t0, 3),
              "free_used": payer.free_used if payer else 0, "paid_bytes": payer.paid_bytes if payer else 0,
              "spent": payer.spent if payer else 0})  # fmt: skip
    elif not quiet and output != "-":
        click.echo(f"{output}: {human(res.written)} ({clean(res.meta['type'])}) verified and decrypted"
                   + spend_summary(payer), err=True)  # fmt: skip


@click.command()
@click.argument("cap")
@json_option
@anon_options
@network_option
def info(cap: str, as_json: bool, network_path: Path | None, anon: bool | None, hops: int | None) -> None:
    """Show a file's name, size, type, parameters and share locations, without downloading it."""
    net = open_network(network_path, anon, hops)
    rc = read_cap_of(cap, net, network_path)
    loc, meta = open_file(net, rc)
    m = loc.manifest
    if as_json:
        _warn(net.warnings())
        emit({"name": clean(meta["name"]), "size": meta["size"], "type": clean(meta["type"]), "k": m.k, "n": m.n,
              "happy": m.happy, "codec": m.codec, "segments": m.nseg, "segment_size": m.segsize,
              "storage_index": m.si.hex(), "verify_cap": rc.verify_cap().to_string(), "nodes_asked": loc.asked,
              "shares": {str(i): [clean(nd.label) for nd in loc.holders[i]] for i in sorted(loc.holders)},
              "unreachable": [clean(u) for u in loc.unreachable]})  # fmt: skip
        return
    click.echo(f"name:        {clean(meta['name'])}")
    click.echo(f"size:        {meta['size']} bytes ({human(meta['size'])})")
    click.echo(f"type:        {clean(meta['type'])}")
    click.echo(f"encoding:    {m.k}-of-{m.n} ({m.codec}), happy {m.happy}, {m.nseg} segments of {m.segsize} bytes")
    click.echo(f"storage idx: {m.si.hex()}")
    click.echo(f"verify cap:  {rc.verify_cap().to_string()}")
    click.echo(f"shares:      {len(loc.holders)} of {m.n} found on {loc.asked} nodes asked")
    for shnum in sorted(loc.holders):
        click.echo(f"  share {shnum:>3}: " + clean(", ".join(n.label for n in loc.holders[shnum])))
    for u in loc.unreachable:
        click.echo(f"  unreachable: {clean(u)}")
    _warn(net.warnings())


_PAY_HELP = ("Most VEIL to spend on the blocks read from nodes that charge (default: [payments] max_spend, else 1); "
             "paid from --wallet.")


@click.command()
@click.argument("verifycap")
@click.option("-r", "--recursive", is_flag=True, help="VERIFYCAP is a folder cap: check the folder and everything under it.")
@click.option("--full", is_flag=True, help="Verify every block of every share, not a sample.")
@json_option
@click.option("--max-spend", default=None, metavar="AMOUNT", help=_PAY_HELP)
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=PAY_WALLET_HELP)
@anon_options
@network_option
def check(verifycap: str, recursive: bool, full: bool, as_json: bool, max_spend: str | None, wallet_path: Path | None,
          network_path: Path | None, anon: bool | None, hops: int | None) -> None:  # fmt: skip
    """Count healthy, missing and corrupt shares using only the verify cap. Exit 0 only if all n are healthy.

    With -r and a folder cap (any kind; a verify cap suffices): the folder's nodes, then every
    file, page and subfolder under it."""
    from .pay_opts import make_payer

    if recursive:
        _anon_for_folders(anon, hops)
        from .trees import health_r

        health_r(verifycap, False, full, as_json, network_path)
        return

    vc = parse_verify_cap(verifycap)
    net = open_network(network_path, anon, hops)
    payer = make_payer(net, max_spend, wallet_path)
    try:
        rep = check_mod.check(net, vc, full=full, payer=payer)
    finally:
        if payer is not None:
            payer.close()
    m = rep.manifest
    if as_json:
        _warn(net.warnings())
        emit({"k": m.k, "n": m.n, "healthy": len(rep.healthy_shares), "missing": sorted(rep.missing),
              "corrupt": len(rep.corrupt), "recoverable": rep.recoverable,
              "shares": [{"shnum": s.shnum, "node": clean(s.node.label), "ok": s.ok, "problem": clean(s.problem)}
                         for s in sorted(rep.shares, key=lambda s: s.shnum)],
              "unreachable": [clean(u) for u in rep.unreachable]})  # fmt: skip
        sys.exit(0 if rep.healthy else 1 if rep.recoverable else 5)
    for s in sorted(rep.shares, key=lambda s: s.shnum):
        click.echo(clean(f"share {s.shnum:>3} on {s.node.label}: {'ok' if s.ok else 'CORRUPT: ' + s.problem}"))
    for u in rep.unreachable:
        click.echo(f"unreachable: {clean(u)}")
    _warn(net.warnings())
    click.echo(
        f"healthy: {len(rep.healthy_shares)} of {m.n} shares (k={m.k}); missing: {rep.missing or 'none'}; "
        f"corrupt: {len(rep.corrupt)}; unreachable nodes: {len(rep.unreachable)}"
    )
    if not rep.recoverable:
        click.echo("veil: error: the file cannot be recovered: fewer than k healthy shares", err=True)
        sys.exit(5)
    if not rep.healthy:
        sys.exit(1)


@click.command()
@click.argument("verifycap")
@click.option("-r", "--recursive", is_flag=True, help="VERIFYCAP is a folder cap: repair the folder and everything under it.")
@click.option("--full", is_flag=True, help="Verify every block of every share before deciding, not a sample.")
@json_option
@click.option("--max-spend", default=None, metavar="AMOUNT", help=_PAY_HELP)
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=PAY_WALLET_HELP)
@anon_options
@network_option
def repair(verifycap: str, recursive: bool, full: bool, as_json: bool, max_spend: str | None, wallet_path: Path | None,
           network_path: Path | None, anon: bool | None, hops: int | None) -> None:  # fmt: skip
    """Re-create missing and corrupt shares on other nodes, from any k, using only the verify cap.

    Nothing is decrypted; safe to run twice, concurrently, or on a healthy file. Nodes that charge
    are paid for the blocks read, from your allowance, then your wallet. Exit 0 only if the file
    has all n healthy shares afterwards. With -r and a folder cap: the folder's nodes (the
    current version put back on those missing it), then every file, page and subfolder under it."""
    from veil.client.payer import stop_reason

    from .pay_opts import make_payer, spend_summary
    from .signer import ticket_signer

    if recursive:
        _anon_for_folders(anon, hops)
        from .trees import health_r

        health_r(verifycap, True, full, as_json, network_path)
        return

    vc = parse_verify_cap(verifycap)
    net = open_network(network_path, anon, hops)
    net.tickets = ticket_signer(wallet_path, net)  # new holders that admit by ticket: charged to the wallet
    payer = make_payer(net, max_spend, wallet_path)
    try:
        res = repair_mod.repair(net, vc, full=full, payer=payer)
    except VeilError as e:
        raise stop_reason(payer, e) from e
    finally:
        if payer is not None:
            payer.close()
        net.close()
    m = res.before.manifest
    if as_json:
        _warn(res.problems + net.warnings())
        emit({"k": m.k, "n": m.n, "needed": res.needed, "healthy_before": res.healthy_before,
              "healthy_after": res.healthy_after if res.needed else m.n,
              "placed": [{"shnum": i, "node": clean(nd.label)} for i, nd in sorted(res.placed.items())],
              "corrupt": [{"shnum": s.shnum, "node": clean(s.node.label)} for s in res.before.corrupt],
              "free_used": payer.free_used if payer else 0, "paid_bytes": payer.paid_bytes if payer else 0,
              "spent": payer.spent if payer else 0})  # fmt: skip
        sys.exit(0 if not res.needed or res.healthy_after >= m.n else 1)
    for s in res.before.corrupt:
        click.echo(clean(f"share {s.shnum:>3} on {s.node.label}: CORRUPT (ignored): {s.problem}"))
    for shnum, node in sorted(res.placed.items()):
        click.echo(f"share {shnum:>3}: re-created on {node.label}")
    _warn(res.problems + net.warnings())
    if not res.needed:
        click.echo(f"healthy: {m.n} of {m.n} shares; nothing to repair")
        return
    click.echo(f"healthy: {res.healthy_before} -> {res.healthy_after} of {m.n} shares (k={m.k})"
               + spend_summary(payer))  # fmt: skip
    if res.healthy_after < m.n:
        sys.exit(1)


commands = [put, get, info, check, repair]
