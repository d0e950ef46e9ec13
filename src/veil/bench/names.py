"""`veil bench names`: name resolutions per second with the proof checked, against this
machine's own ceiling measured in the same run (plain Ed25519 verifications per second).

A names tree of N records is built through the real rules (commit-reveal for every name would
take minutes, so the records are written through one overlay, as a state sync would), one block
commits its root and is signed by three validators, and each resolution is what a client pays
for: the validator's answer (records, Merkle proof, header, certificate) built, encoded as CBOR,
decoded, and checked by ``verify_answer`` (two of the three signatures, the proof, the record).
The two signatures dominate, so the ratio to "one Ed25519 verify" is the number to watch; a
resolver keeps the headers it has certified (``certified``), so lookups against the same block
check only the proof: that rate is printed too.
"""

from __future__ import annotations

import json
import random
import time

import click

from veil.crypto.sigbatch import verify_fast
from veil.crypto.sign import SigningKey, node_id
from veil.format import cbor
from veil.ledger.address import address_of
from veil.ledger.block import BlockHeader, encode_sigs, make_header
from veil.ledger.names import NameRec, name_key, record_hash_of
from veil.ledger.names_proof import ROOT_NAME, build_answer, verify_answer
from veil.ledger.names_tree import NameTree

CHAIN = "bench-names"


def _names(n: int) -> dict[str, bytes]:
    owner = address_of(SigningKey(b"\x01" * 32).public_key)
    return {f"name-{i:07d}": NameRec(owner, 2**40, 1, 0, (("wallet", owner),)).encode() for i in range(n)}


def _ceiling(seconds: float) -> float:
    k = SigningKey(b"\x02" * 32)
    msg = b"x" * 200
    sig = k.sign(msg)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            verify_fast(k.public_key, msg, sig)
        n += 200
    return n / (time.perf_counter() - t0)


@click.command("names")
@click.option("--names", "count", default=100_000, show_default=True, help="Records in the names tree.")
@click.option("--seconds", default=3.0, show_default=True, help="How long each measurement runs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def names_cmd(count: int, seconds: float, as_json: bool) -> None:
    """Name resolutions/s with proof checking, against Ed25519 verifies/s on this machine."""
    recs = _names(count)
    leaves = {name_key(n): record_hash_of(r) for n, r in recs.items()}
    t0 = time.perf_counter()
    tree = NameTree(leaves)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree.updated({name_key("name-0000000"): b"\x05" * 32})  # what a validator pays for a block that changes names
    update_s = time.perf_counter() - t0
    validators = [SigningKey(bytes([10 + i]) * 32) for i in range(3)]
    h = make_header(CHAIN, 1, b"\x00" * 32, 1000, [], b"\x00" * 32, b"\x00" * 32, {ROOT_NAME: tree.root})
    sigs = encode_sigs({v.public_key: h.sign(v) for v in validators})
    trusted = frozenset(node_id(v.public_key) for v in validators)
    names = list(recs)
    rnd = random.Random(7)
    ceiling = _ceiling(seconds)
    rates: dict[str, float] = {}
    depth = n = 0
    wire = b""
    for mode in ("cold", "warm"):  # cold: every answer's certificate checked; warm: once per block
        certified: dict[bytes, BlockHeader] | None = {} if mode == "warm" else None
        n, depth, t0 = 0, 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            name = names[rnd.randrange(len(names))]
            wire = cbor.encode(build_answer(name, h.raw, sigs, tree, [recs[name]]))
            got = cbor.decode(wire, 1 << 16)
            res = verify_answer(got, name, CHAIN, trusted, certified=certified)
            assert res.active
            depth += len(got["entries"][0][2][0])
            n += 1
        rates[mode] = n / (time.perf_counter() - t0)
    out = {"names": count, "tree_build_s": build_s, "tree_update_s": update_s, "ed25519_verifies_per_s": ceiling,
           "resolutions_per_s": rates["cold"], "ratio_to_one_verify": rates["cold"] / ceiling,
           "resolutions_per_s_same_block": rates["warm"], "ratio_same_block": rates["warm"] / ceiling,
           "mean_proof_hashes": depth / max(1, n), "answer_bytes": len(wire)}  # fmt: skip
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    click.echo(f"names tree:   {count:,} records built in {build_s:.2f} s (a block that changes one: {update_s:.2f} s); proofs of {out['mean_proof_hashes']:.1f} hashes, "
               f"answers of {len(wire):,} bytes")  # fmt: skip
    click.echo(f"ceiling:      {ceiling:10,.0f} Ed25519 verifies/s (one core)")
    click.echo(f"resolutions:  {rates['cold']:10,.0f}/s, each with the proof and 2-of-3 validator signatures checked "
               f"(ratio {rates['cold'] / ceiling:.2f} of one verify)")  # fmt: skip
    click.echo(f"same block:   {rates['warm']:10,.0f}/s, the block's certificate checked once, every proof checked "
               f"(ratio {rates['warm'] / ceiling:.2f})")  # fmt: skip
