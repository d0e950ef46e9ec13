"""The S3 endpoint with the real command-line clients and SDKs on a real devnet: aws-cli
(`s3 cp/sync/ls/rm`, `s3api` multipart), rclone (copy, sync, check, lsf), s3cmd and minio-py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet
from s3_helpers import Endpoint, start_endpoint, tool_env

pytestmark = pytest.mark.integration
MiB = 1 << 20
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def ep(devnet: RunningDevnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    e = start_endpoint(devnet, ("tools",), tmp_path_factory.mktemp("s3log") / "serve.log")
    yield e
    e.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tool-home")


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=300, cwd=cwd)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()[-2000:]}"
    return p.stdout.decode()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sample(root: Path) -> Path:
    files = {"a.txt": b"alpha", "empty": b"", "sub dir/b+c.bin": os.urandom(70_000), "sub dir/ünï.txt": "ü".encode(),
             "deep/x/y/z.dat": os.urandom(5 * MiB + 1)}  # fmt: skip
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_aws_cli_cp_sync_ls_rm(ep: Endpoint, home: Path, tmp_path: Path) -> None:
    env = tool_env(ep, home)
    aws = [str(BIN / "aws"), "--endpoint-url", ep.url]
    _run([*aws, "s3", "mb", "s3://awscli"], env)
    src = _sample(tmp_path / "src")
    _run([*aws, "s3", "cp", str(src / "a.txt"), "s3://awscli/single/a.txt"], env)
    _run([*aws, "s3", "sync", str(src), "s3://awscli/tree"], env)
    listing = _run([*aws, "s3", "ls", "--recursive", "s3://awscli/tree/"], env)
    assert sorted(line.split(maxsplit=3)[3] for line in listing.splitlines()) == sorted(
        f"tree/{k}" for k in _tree(src))
    top = _run([*aws, "s3", "ls", "s3://awscli/tree/"], env)
    assert "PRE sub dir/" in top and "PRE deep/" in top
    out = tmp_path / "out"
    _run([*aws, "s3", "sync", "s3://awscli/tree", str(out)], env)
    assert _tree(out) == _tree(src)
    # a second sync has nothing to do
    assert _run([*aws, "s3", "sync", str(src), "s3://awscli/tree"], env).strip() == ""
    _run([*aws, "s3", "cp", "s3://awscli/single/a.txt", str(tmp_path / "a.copy")], env)
    assert (tmp_path / "a.copy").read_bytes() == b"alpha"
    _run([*aws, "s3", "rm", "--recursive", "s3://awscli/tree"], env)
    p = subprocess.run([*aws, "s3", "ls", "--recursive", "s3://awscli/tree/"], env=env, capture_output=True, timeout=300)
    assert p.stdout.decode().strip() == ""


def test_aws_cli_s3api_multipart(ep: Endpoint, home: Path, tmp_path: Path) -> None:
    env = tool_env(ep, home)
    api = [str(BIN / "aws"), "--endpoint-url", ep.url, "s3api"]
    _run([*api, "create-bucket", "--bucket", "apimp"], env)
    up = json.loads(_run([*api, "create-multipart-upload", "--bucket", "apimp", "--key", "m/obj"], env))["UploadId"]
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    done = []
    for i, data in enumerate(parts, 1):
        f = tmp_path / f"p{i}"
        f.write_bytes(data)
        r = json.loads(_run([*api, "upload-part", "--bucket", "apimp", "--key", "m/obj", "--upload-id", up, "--part-number", str(i), "--body", str(f)], env))  # fmt: skip
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    listed = json.loads(_run([*api, "list-parts", "--bucket", "apimp", "--key", "m/obj", "--upload-id", up], env))
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    r = json.loads(_run([*api, "complete-multipart-upload", "--bucket", "apimp", "--key", "m/obj", "--upload-id", up, "--multipart-upload", json.dumps({"Parts": done})], env))  # fmt: skip
    assert r["ETag"].endswith('-2"')
    _run([*api, "get-object", "--bucket", "apimp", "--key", "m/obj", str(tmp_path / "got")], env)
    assert (tmp_path / "got").read_bytes() == b"".join(parts)
    head = json.loads(_run([*api, "head-object", "--bucket", "apimp", "--key", "m/obj"], env))
    assert head["ContentLength"] == sum(map(len, parts)) and head["ETag"] == r["ETag"]


def _rclone_conf(ep: Endpoint, home: Path) -> Path:
    conf = home / "rclone.conf"
    conf.write_text(f"[veil]\ntype = s3\nprovider = Other\naccess_key_id = {ep.access_key}\n"
                    f"secret_access_key = {ep.secret}\nendpoint = {ep.url}\nregion = us-east-1\n")
    return conf


def test_rclone_copy_sync_check_lsf(ep: Endpoint, home: Path, tmp_path: Path) -> None:
    assert shutil.which("rclone") is not None, "rclone is not installed: dev/test.sh installs Debian's rclone"
    env = tool_env(ep, home)
    rc = ["rclone", "--config", str(_rclone_conf(ep, home)), "--low-level-retries", "2", "--retries", "1"]
    _run([*rc, "mkdir", "veil:rclone"], env)
    src = _sample(tmp_path / "src")
    _run([*rc, "copy", str(src), "veil:rclone/copy"], env)
    _run([*rc, "check", str(src), "veil:rclone/copy"], env)
    assert sorted(_run([*rc, "lsf", "-R", "--files-only", "veil:rclone/copy"], env).split("\n")[:-1]) == sorted(_tree(src))
    (src / "a.txt").write_bytes(b"changed")
    (src / "empty").unlink()
    _run([*rc, "sync", str(src), "veil:rclone/copy"], env)
    _run([*rc, "check", "--download", str(src), "veil:rclone/copy"], env)
    out = tmp_path / "out"
    _run([*rc, "copy", "veil:rclone/copy", str(out)], env)
    assert _tree(out) == _tree(src)


def test_s3cmd(ep: Endpoint, home: Path, tmp_path: Path) -> None:
    env = tool_env(ep, home)
    host = ep.url.removeprefix("http://")
    cfg = home / "s3cfg"
    cfg.write_text(f"[default]\naccess_key = {ep.access_key}\nsecret_key = {ep.secret}\nhost_base = {host}\n"
                   f"host_bucket = {host}\nuse_https = False\nsignature_v2 = False\n")
    cmd = [str(BIN / "s3cmd"), "-c", str(cfg)]
    _run([*cmd, "mb", "s3://s3cmd"], env)
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(300_000))
    _run([*cmd, "put", str(f), "s3://s3cmd/dir/f.bin"], env)
    assert "s3://s3cmd/dir/f.bin" in _run([*cmd, "ls", "-r", "s3://s3cmd"], env)
    _run([*cmd, "get", "s3://s3cmd/dir/f.bin", str(tmp_path / "g.bin")], env)
    assert (tmp_path / "g.bin").read_bytes() == f.read_bytes()
    _run([*cmd, "del", "s3://s3cmd/dir/f.bin"], env)
    assert "f.bin" not in _run([*cmd, "ls", "-r", "s3://s3cmd"], env)


def test_minio_py(ep: Endpoint, tmp_path: Path) -> None:
    import io

    from minio import Minio

    m = Minio(ep.url.removeprefix("http://"), access_key=ep.access_key, secret_key=ep.secret, secure=False,
              region="us-east-1")  # fmt: skip
    m.make_bucket("miniopy")
    assert m.bucket_exists("miniopy")
    data = os.urandom(6 * MiB + 3)
    m.put_object("miniopy", "x/big", io.BytesIO(data), len(data), part_size=5 * MiB)  # multipart
    m.put_object("miniopy", "x/small", io.BytesIO(b"s"), 1)
    assert m.get_object("miniopy", "x/big").read() == data
    assert sorted(o.object_name for o in m.list_objects("miniopy", prefix="x/", recursive=True)) == ["x/big", "x/small"]
    st = m.stat_object("miniopy", "x/small")
    assert st.size == 1 and st.etag == hashlib.md5(b"s").hexdigest()
    m.remove_object("miniopy", "x/small")
    assert [o.object_name for o in m.list_objects("miniopy", recursive=True)] == ["x/big"]
