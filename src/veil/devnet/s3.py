"""`veil devnet up --s3`: an S3 endpoint (`veil s3 serve`) beside the devnet's nodes.

    <devnet>/s3/keys.sealed    three key pairs, ``main``, ``alt`` and ``tenant`` (Ceph's s3-tests
                               need all three), each with its own new root folder; sealed under
                               $VEIL_PASSPHRASE, or ``devnet`` when unset (a throw-away network)
    <devnet>/s3/endpoint.json  the endpoint's pid, port and URL
    <devnet>/s3/meta.sqlite    ETags and object headers (veil.s3.meta)
    <devnet>/s3/s3.log         its log

Imports from: veil.client, veil.devnet, veil.s3, veil.errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from veil.client.folders import create_folder
from veil.client.network import load_network
from veil.devnet.specs import DevnetFiles, free_port
from veil.durable import write_json_atomic
from veil.errors import UnavailableError
from veil.s3.keys import S3Key, load_keys, new_key, save_keys

KEY_NAMES = ("main", "alt", "tenant")
DEVNET_PASSPHRASE = "devnet"
START_TIMEOUT = 60.0


def s3_dir(d: DevnetFiles) -> Path:
    return d.root / "s3"


def passphrase() -> str:
    return os.environ.get("VEIL_PASSPHRASE") or DEVNET_PASSPHRASE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def endpoint_info(d: DevnetFiles) -> dict[str, Any] | None:
    """The running endpoint's pid, port and URL, or None."""
    try:
        info = json.loads((s3_dir(d) / "endpoint.json").read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError):
        return None
    return info if _alive(pid) else None


def ensure_keys(d: DevnetFiles) -> list[S3Key]:
    path = s3_dir(d) / "keys.sealed"
    keys = load_keys(path, passphrase())
    missing = [n for n in KEY_NAMES if n not in {k.name for k in keys}]
    if missing:
        net = load_network(d.static_network_path)
        try:
            keys += [new_key(n, create_folder(net).to_string()) for n in missing]
        finally:
            net.close()
        save_keys(path, passphrase(), keys)
    return keys


def start(d: DevnetFiles) -> tuple[str, list[S3Key]]:
    """Start the endpoint unless it runs; returns its URL and the key pairs."""
    keys = ensure_keys(d)
    info = endpoint_info(d)
    if info is not None:
        return str(info["url"]), keys
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(s3_dir(d) / "s3.log", "ab")
    cmd = [sys.executable, "-m", "veil.cli.main", "s3", "serve", "--listen", f"127.0.0.1:{port}",
           "--keys", str(s3_dir(d) / "keys.sealed"), "--network", str(d.static_network_path)]  # fmt: skip
    env = {**os.environ, "VEIL_PASSPHRASE": passphrase()}
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    log.close()
    write_json_atomic(s3_dir(d) / "endpoint.json", {"pid": proc.pid, "port": port, "url": url})
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=5)
            break
        except urllib.error.HTTPError:
            break  # 403 for an unsigned request: it is serving
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise UnavailableError(f"the devnet's S3 endpoint did not start (see {s3_dir(d) / 's3.log'})") from None
            time.sleep(0.2)
    return url, keys


def stop(d: DevnetFiles, timeout: float = 10.0) -> bool:
    info = endpoint_info(d)
    if info is None:
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True
