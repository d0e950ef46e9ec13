"""A real S3 endpoint (`veil s3 serve` as a process) on a real devnet, for the S3 tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devnet_helpers import RunningDevnet

from veil.devnet.specs import free_port

PASSPHRASE = "s3-test-passphrase"


@dataclass
class Endpoint:
    url: str
    access_key: str
    secret: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    keys: dict[str, tuple[str, str]]  # name -> (access key, secret)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def add_key(d: RunningDevnet, env: dict[str, str], name: str) -> tuple[str, str]:
    p = subprocess.run([sys.executable, "-m", "veil.cli.main", "s3", "keys", "add", name], env=env,
                       capture_output=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr.decode()
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in p.stdout.decode().splitlines())}
    return fields["access key id"], fields["secret access key"]


def start_endpoint(d: RunningDevnet, names: tuple[str, ...] = ("main",), log: Path | None = None) -> Endpoint:
    env = {**d.env, "VEIL_PASSPHRASE": PASSPHRASE}
    keys = {name: add_key(d, env, name) for name in names}
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "s3", "serve", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=out, stderr=out)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=5)
        except urllib.error.HTTPError:
            break  # 403 to an anonymous request: it is up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"veil s3 serve did not come up (exit {proc.poll()})") from None
            time.sleep(0.2)
    ak, sk = keys[names[0]]
    return Endpoint(url, ak, sk, proc, env, keys)


def boto_client(ep: Endpoint, name: str | None = None, **config: object) -> object:
    import boto3
    from botocore.config import Config

    ak, sk = ep.keys[name] if name else (ep.access_key, ep.secret)
    return boto3.client("s3", endpoint_url=ep.url, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=Config(retries={"max_attempts": 2}, connect_timeout=30, read_timeout=120,
                                      **config))  # type: ignore[arg-type]  # fmt: skip


def tool_env(ep: Endpoint, home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # plain HTTP; rclone refuses a bundle
    return {**base, "AWS_ACCESS_KEY_ID": ep.access_key, "AWS_SECRET_ACCESS_KEY": ep.secret,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"), "HOME": str(home)}
