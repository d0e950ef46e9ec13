"""`veil s3 serve` and `veil s3 keys add|list|rm`: the S3-compatible endpoint (docs/specs/s3.md)."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from veil.client.network import veil_home
from veil.errors import UsageError

from .common import network_option, open_network, setup_logging, wait_for_stop_signal
from .node import parse_listen


def _keys_path(path: Path | None) -> Path:
    from veil.s3.keys import default_path

    return path or default_path(veil_home())


def _passphrase(confirm: bool) -> str:
    env = os.environ.get("VEIL_PASSPHRASE")
    if env is not None:
        return env
    return str(click.prompt("S3 keys passphrase", hide_input=True, confirmation_prompt=confirm, err=True))


def _keys_option(f: Any) -> Any:
    return click.option("--keys", "keys_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Sealed keys file (default: $VEIL_HOME/s3/keys.sealed; passphrase: VEIL_PASSPHRASE).")(f)


@click.group()
def s3() -> None:
    """An S3-compatible endpoint over your folders: aws-cli, boto3, rclone, s3cmd, minio."""


@s3.group()
def keys() -> None:
    """Access keys of the endpoint (sealed under a passphrase; one root folder each)."""


@keys.command("add")
@click.argument("name")
@click.option("--root", "root", default=None, metavar="FOLDER",
              help="Root folder of this key's buckets (a write cap or ALIAS:path); default: a new folder.")
@_keys_option
@network_option
def keys_add(name: str, root: str | None, keys_path: Path | None, network_path: Path | None) -> None:
    """Make an access key and secret for NAME; prints both (the secret only now)."""
    from veil.client.aliases import parse_folder_path
    from veil.client.folders import create_folder, folder_at, writable
    from veil.s3.keys import load_keys, new_key, save_keys

    path = _keys_path(keys_path)
    secret = _passphrase(confirm=not path.exists())
    existing = load_keys(path, secret)
    if any(k.name == name for k in existing):
        raise UsageError(f"an S3 key named {name!r} exists already (`veil s3 keys rm {name}` first)")
    net = open_network(network_path)
    if root is None:
        wcap = create_folder(net)
    else:
        fp = parse_folder_path(root)
        wcap = writable(folder_at(net, fp.cap, fp.parts), "the root folder")
    key = new_key(name, wcap.to_string())
    save_keys(path, secret, [*existing, key])
    click.echo(f"name:              {name}")
    click.echo(f"access key id:     {key.access_key}")
    click.echo(f"secret access key: {key.secret}")
    click.echo(f"root (read cap):   {wcap.read_cap().to_string()}")


@keys.command("list")
@_keys_option
def keys_list(keys_path: Path | None) -> None:
    """The keys: name and access key id (never the secret)."""
    from veil.s3.keys import load_keys

    for k in load_keys(_keys_path(keys_path), _passphrase(confirm=False)):
        click.echo(f"{k.name:<20} {k.access_key}")


@keys.command("rm")
@click.argument("name")
@_keys_option
def keys_rm(name: str, keys_path: Path | None) -> None:
    """Remove key NAME (its buckets stay in its root folder)."""
    from veil.s3.keys import load_keys, save_keys

    path = _keys_path(keys_path)
    secret = _passphrase(confirm=False)
    ks = load_keys(path, secret)
    if not any(k.name == name for k in ks):
        raise UsageError(f"no S3 key named {name!r}")
    save_keys(path, secret, [k for k in ks if k.name != name])
    click.echo(f"removed S3 key {name}")


@s3.command()
@click.option("--listen", default="127.0.0.1:9000", show_default=True, help="HOST:PORT to serve HTTP on.")
@click.option("--root", "root", default=None, metavar="FOLDER",
              help="Serve this folder (write cap or ALIAS:path) to every key, instead of each key's own root.")
@click.option("--domain", "domains", multiple=True, default=["localhost"], show_default=True,
              help="Virtual-host addressing: BUCKET.<domain> names a bucket (repeatable).")
@click.option("-k", "k", type=int, default=3, show_default=True, help="Shares needed to read an object.")
@click.option("-n", "n", type=int, default=10, show_default=True, help="Shares made per object.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One line per request on stderr.")
@_keys_option
@network_option
@click.option("-v", "--verbose", is_flag=True)
def serve(listen: str, root: str | None, domains: tuple[str, ...], k: int, n: int, access_log: bool,
          keys_path: Path | None, network_path: Path | None, verbose: bool) -> None:
    """Serve the S3 API: buckets are folders under each key's root, objects are files."""
    from veil.client.aliases import parse_folder_path
    from veil.client.folders import folder_at, writable
    from veil.s3.app import S3Config
    from veil.s3.keys import load_keys
    from veil.s3.server import Endpoint

    setup_logging(verbose)
    if access_log:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        acc = logging.getLogger("veil.s3.access")
        acc.setLevel(logging.INFO)
        acc.addHandler(h)
        acc.propagate = False
    if not 1 <= k <= n <= 255:
        raise UsageError(f"-k/-n must satisfy 1 <= k <= n <= 255 (got {k}-of-{n})")
    path = _keys_path(keys_path)
    if not path.exists():
        raise UsageError(f"no S3 keys in {path}: run `veil s3 keys add NAME` first")
    ks = load_keys(path, _passphrase(confirm=False))
    if not ks:
        raise UsageError(f"no S3 keys in {path}: run `veil s3 keys add NAME` first")
    host, port = parse_listen(listen)
    net = open_network(network_path)
    if root is not None:
        fp = parse_folder_path(root)
        wcap = writable(folder_at(net, fp.cap, fp.parts), "the root folder").to_string()
        ks = [replace(x, root=wcap) for x in ks]
    for x in ks:
        x.root_cap()
    ep = Endpoint(S3Config(ks, list(domains), k, n), lambda: net, path.parent / "meta.sqlite")
    try:
        ep.start(host, port)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    click.echo(f"s3: serving {ep.url} ({len(ks)} key{'s' if len(ks) != 1 else ''})", err=True)
    wait_for_stop_signal()
    ep.stop()
    net.close()


commands = [s3]
