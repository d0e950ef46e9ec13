"""`veil bench s3`: the S3 endpoint against the native client on one fresh devnet, in one run;
`veil bench s3 --conformance`: Ceph's s3-tests (the 184-test selection) against it.

Speed: a file (256 MiB by default) through `veil put`/`veil get` (CLI processes) and through
boto3's transfer manager (PUT and GET, multipart), with the ratio; then 64 KiB objects PUT and
GET by boto3 with 8 threads, in objects per second. Conformance: copies the suite (read-only in
CI) to a temp dir, installs its requirements into a cached venv, writes its config with the
devnet's three key pairs, runs the selection of ``../shared/peers/README.md`` and prints the
pass count, every failure, and how many 5xx answers the endpoint gave (the access log).
Needs boto3 (test extras) for the speed part.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from veil.bench.testfile import write_test_file
from veil.devnet import s3 as devnet_s3
from veil.devnet.manager import Devnet
from veil.errors import UsageError
from veil.s3.keys import S3Key


def default_suite() -> Path:
    """``shared/peers/s3-tests`` beside the repository or a directory above it (worktrees nest)."""
    repo = Path(__file__).resolve().parents[3]
    for up in repo.parents:
        if (up / "shared" / "peers" / "s3-tests" / "s3tests").is_dir():
            return up / "shared" / "peers" / "s3-tests"
    return repo.parent / "shared" / "peers" / "s3-tests"

K = ("(bucket_list or bucket_create or bucket_delete or bucket_head or bucket_notexist or bucketv2_notexist or "
     "buckets_create or list_buckets or object_write or object_read or object_head or multi_object or multipart or "
     "ranged_request or object_raw or presigned or get_object_if or object_set_get_metadata or basic_key_count or "
     "object_requestid or object_create) and not tenant and not acl and not cors and not encryption and not "
     "versioning and not versioned and not lock and not lifecycle and not attributes and not checksum and not aws2")
M = ("not fails_on_aws and not fails_on_rgw and not encryption and not sse_s3 and not bucket_encryption and not "
     "lifecycle and not tagging and not bucket_policy and not bucket_logging and not versioning and not object_lock "
     "and not checksum and not conditional_write and not iam_user and not iam_account and not object_ownership and "
     "not storage_class and not auth_aws2")
MiB = 1 << 20


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def _client(url: str, key: S3Key) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise UsageError("veil bench s3 needs boto3: pip install -e '.[test]'") from e
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=key.access_key, aws_secret_access_key=key.secret,
                        region_name="us-east-1", config=Config(max_pool_connections=16, read_timeout=600))


@click.command("s3")
@click.option("--size", "size_mib", default=256, show_default=True, help="Large object size in MiB.")
@click.option("--small", "small_count", default=200, show_default=True, help="64 KiB objects to PUT and GET.")
@click.option("--threads", default=8, show_default=True, help="boto3 threads for the small objects.")
@click.option("--nodes", default=10, show_default=True, help="Storage nodes in the bench devnet.")
@click.option("--conformance", is_flag=True, help="Run Ceph's s3-tests selection instead of the speed bench.")
@click.option("--suite", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The s3-tests checkout (default: ../shared/peers/s3-tests beside the repository).")
def s3_cmd(size_mib: int, small_count: int, threads: int, nodes: int, conformance: bool, suite: Path | None) -> None:
    """S3 endpoint (boto3) vs `veil put`/`veil get`, small objects/s; or --conformance (Ceph s3-tests)."""
    suite = suite or default_suite()
    if conformance and not (suite / "s3tests").is_dir():
        raise UsageError(f"no s3-tests checkout at {suite} (--suite PATH)")
    with tempfile.TemporaryDirectory(prefix="veil-bench-s3-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "VEIL_HOME": str(root), "VEIL_DEVNET": str(root / "devnet")}
        devnet = Devnet(root / "devnet")
        devnet.up(nodes, ["storage"], [])
        try:
            url, keys = devnet_s3.start(devnet)
            if conformance:
                _conformance(suite, root, url, keys, devnet_s3.s3_dir(devnet) / "s3.log")
            else:
                _speed(root, env, url, keys[0], size_mib, small_count, threads)
        finally:
            devnet.down()


def _speed(root: Path, env: dict[str, str], url: str, key: S3Key, size_mib: int, count: int, threads: int) -> None:
    from boto3.s3.transfer import TransferConfig

    size = size_mib * MiB
    src = write_test_file(root / "bench.bin", size)
    want = _digest(src)

    def veil(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=env, capture_output=True,
                              check=True, timeout=1800)  # fmt: skip

    t = time.perf_counter()
    cap = veil("put", "-q", str(src)).stdout.decode().strip()
    cli_up = time.perf_counter() - t
    t = time.perf_counter()
    veil("get", "-q", cap, "-o", str(root / "cli.out"))
    cli_down = time.perf_counter() - t
    if _digest(root / "cli.out") != want:
        raise UsageError("bench: veil get returned different bytes")
    (root / "cli.out").unlink()
    s3 = _client(url, key)
    s3.create_bucket(Bucket="bench")
    cfg = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=4)
    t = time.perf_counter()
    s3.upload_file(str(src), "bench", "big.bin", Config=cfg)
    s3_up = time.perf_counter() - t
    t = time.perf_counter()
    s3.download_file("bench", "big.bin", str(root / "s3.out"), Config=cfg)
    s3_down = time.perf_counter() - t
    if _digest(root / "s3.out") != want:
        raise UsageError("bench: the S3 GET returned different bytes")
    (root / "s3.out").unlink()
    body = os.urandom(64 * 1024)
    with ThreadPoolExecutor(threads) as pool:
        t = time.perf_counter()
        list(pool.map(lambda i: s3.put_object(Bucket="bench", Key=f"small/{i:05d}", Body=body), range(count)))
        small_put = time.perf_counter() - t
        t = time.perf_counter()
        got = list(pool.map(lambda i: s3.get_object(Bucket="bench", Key=f"small/{i:05d}")["Body"].read(), range(count)))
        small_get = time.perf_counter() - t
    if any(g != body for g in got):
        raise UsageError("bench: a small S3 GET returned different bytes")
    mb = size / 1e6
    click.echo(f"s3 bench: {size_mib} MiB object, 3-of-10, boto3 (multipart 64 MiB x4) vs veil put/get, one devnet")
    click.echo(f"PUT      veil {mb / cli_up:7.1f} MB/s   s3 {mb / s3_up:7.1f} MB/s   s3/veil {cli_up / s3_up:5.0%}")
    click.echo(f"GET      veil {mb / cli_down:7.1f} MB/s   s3 {mb / s3_down:7.1f} MB/s   s3/veil {cli_down / s3_down:5.0%}")
    click.echo(f"64 KiB objects, {threads} threads: PUT {count / small_put:6.1f}/s   GET {count / small_get:6.1f}/s "
               "(targets: 100/s and 200/s)")


def _venv(suite: Path) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "veil" / "s3-tests-venv"
    py = cache / "bin" / "python"
    if not (cache / "bin" / "pytest").exists():
        click.echo(f"installing the suite's requirements into {cache} (once)", err=True)
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(suite / "requirements.txt")], check=True)
    return cache


def _config(example: str, port: int, keys: list[S3Key]) -> str:
    out = example.replace("port = 9000", f"port = {port}")
    for k in keys:
        for field, value in (("access_key", k.access_key), ("secret_key", k.secret)):
            pattern = re.compile(rf"(\[s3 {k.name}\][^\[]*?{field} = )\S+")
            out = pattern.sub(lambda m, v=value: str(m.group(1)) + v, out)  # type: ignore[misc]
    return out


def _conformance(suite: Path, root: Path, url: str, keys: list[S3Key], log: Path) -> None:
    work = root / "s3-tests"
    shutil.copytree(suite, work)
    venv = _venv(suite)
    port = int(url.rsplit(":", 1)[1])
    (work / "veil.conf").write_text(_config((work / "veil.conf.example").read_text(), port, keys))
    junit = root / "junit.xml"
    env = {**os.environ, "S3TEST_CONF": str(work / "veil.conf")}
    subprocess.run([str(venv / "bin" / "pytest"), "s3tests/functional/test_s3.py", "s3tests/functional/test_headers.py",
                    "-k", K, "-m", M, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"], cwd=work, env=env,
                   capture_output=True, timeout=3600)  # fmt: skip
    if not junit.exists():
        raise UsageError("the s3-tests run produced no report")
    total, failed = 0, []
    for case in ET.parse(junit).getroot().iter("testcase"):
        total += 1
        bad = next((c for c in case if c.tag in ("failure", "error")), None)
        if bad is not None:
            msg = (bad.get("message") or "").splitlines()[0][:160] if bad.get("message") else bad.tag
            failed.append(f"{case.get('name')}: {msg}")
        elif any(c.tag == "skipped" for c in case):
            failed.append(f"{case.get('name')}: skipped")
    fivexx = sum(1 for line in log.read_text(errors="replace").splitlines() if re.search(r" 5\d\d \d+ms ", line))
    passed = total - len(failed)
    click.echo(f"s3 conformance (Ceph s3-tests, {total} selected): {passed}/{total} passed "
               f"({passed / max(total, 1):.1%}); 5xx answers: {fivexx}")
    for f in failed:
        click.echo(f"  FAIL {f}")
