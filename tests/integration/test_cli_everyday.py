"""The CLI as scripts and new users meet it, on one real devnet (10 storage nodes, a validator and
a gateway over TLS on 127.0.0.1): `--json` shapes (docs/specs/cli-json.md), `veil put A B C`,
`veil put -`, the summary line, `veil rm CAP` (only the uploader may delete), share links from
the configured gateway, `devnet status`/`down`, and the bad-input lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devnet_helpers import RunningDevnet

from veil.client.wallet import create_wallet
from veil.devnet.ledger import faucet
from veil.ledger.amount import UNIT

pytestmark = pytest.mark.integration

PASS = "correct horse"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    home = tmp_path_factory.mktemp("veil-cli")
    d = RunningDevnet(home / "devnet", home)
    d.up(10)
    try:
        yield d
    finally:
        d.devnet.down()


def js(p: subprocess.CompletedProcess[bytes]) -> Any:
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 1, lines  # one object, one line
    v = json.loads(lines[0])
    assert v["v"] == 1
    return v


def one_error_line(p: subprocess.CompletedProcess[bytes], code: int, words: str) -> None:
    err = p.stderr.decode()
    assert p.returncode == code, (p.returncode, err)
    assert err.count("\n") == 1 and words in err, err


def test_put_many_files_json_and_get_each_back(env: RunningDevnet, tmp_path: Path) -> None:
    files = []
    for i, size in enumerate((0, 5000, 5_000_000)):  # empty, one-shot and streamed uploads
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(os.urandom(size))
        files.append(f)
    gateway = json.loads((env.devnet.root / "network.json").read_text())["gateway"]
    assert gateway.startswith("http://127.0.0.1:")
    p = env.veil("put", "--json", *map(str, files))
    assert p.returncode == 0, p.stderr.decode()
    rows = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert [r["name"] for r in rows] == [f.name for f in files]
    for f, r in zip(files, rows, strict=True):
        assert r["v"] == 1 and r["size"] == f.stat().st_size and (r["k"], r["n"]) == (3, 10)
        assert r["read_cap"].startswith("veil:r1:") and r["verify_cap"].startswith("veil:v1:")
        assert r["link"].startswith(gateway + "/f/")  # the devnet's own gateway, never invented
        assert len({s["node_id"] for s in r["shares"]}) == 10 and len(r["delete_key"]) == 64
        out = tmp_path / f"{f.name}.out"
        g = js(env.veil("get", r["read_cap"], "-o", str(out), "--json"))
        assert out.read_bytes() == f.read_bytes()
        assert (g["path"], g["name"], g["size"], g["written"]) == (str(out), f.name, r["size"], r["size"])
        assert g["free_used"] == 0 and g["spent"] == 0  # nodes here do not charge
    big = rows[2]
    info = js(env.veil("info", big["read_cap"], "--json"))
    assert (info["name"], info["size"], info["k"], info["n"]) == ("f2.bin", 5_000_000, 3, 10)
    assert info["verify_cap"] == big["verify_cap"] and len(info["shares"]) == 10
    chk = js(env.veil("check", big["verify_cap"], "--json"))
    assert chk["healthy"] == 10 and chk["missing"] == [] and chk["recoverable"] and len(chk["shares"]) == 10
    rep = js(env.veil("repair", big["verify_cap"], "--json"))
    assert rep["needed"] == [] and rep["healthy_after"] == 10 and rep["placed"] == []


def test_text_put_prints_caps_and_a_summary_line(env: RunningDevnet, tmp_path: Path) -> None:
    f = tmp_path / "s.bin"
    f.write_bytes(os.urandom(300_000))
    p = env.veil("put", str(f), check=True)
    out = p.stdout.decode().splitlines()
    assert [x.split(":")[0] for x in out] == ["read cap", "verify cap", "link"]
    summary = p.stderr.decode().strip().splitlines()[-1]
    assert summary.startswith("s.bin: 300.0 KB in ") and "/s); 10 shares (3 needed) on 10 nodes: " in summary


def test_put_from_stdin_with_a_name(env: RunningDevnet, tmp_path: Path) -> None:
    data = os.urandom(6_000_000)  # past the one-shot size: the spooled file streams
    r = js(env.veil("put", "-", "--name", "piped.bin", "--json", input=data))
    assert (r["name"], r["size"]) == ("piped.bin", len(data))
    p = env.veil("get", r["read_cap"], "-o", "-", check=True)
    assert p.stdout == data
    r2 = js(env.veil("put", "-", "--json", input=b"x"))
    assert r2["name"] == "stdin"


def test_bad_put_and_get_input_is_one_line(env: RunningDevnet, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("a")
    one_error_line(env.veil("put"), 2, "name at least one FILE")
    one_error_line(env.veil("put", str(f), "--name", "x"), 2, "--name is for `veil put -`")
    one_error_line(env.veil("put", "-", "-"), 2, "once per command")
    one_error_line(env.veil("put", str(tmp_path)), 2, "is a directory")
    one_error_line(env.veil("put", str(f), str(tmp_path / "nope")), 2, "no such file")
    cap = js(env.veil("put", str(f), "--json"))["read_cap"]
    one_error_line(env.veil("get", cap, "-o", "-", "--json"), 2, "--json prints to stdout")


@pytest.mark.timeout(900)  # a dozen CLI runs against every node; minutes on a loaded machine
def test_rm_deletes_only_for_the_uploader(env: RunningDevnet, tmp_path: Path) -> None:
    f = tmp_path / "secret.bin"
    f.write_bytes(os.urandom(2_000_000))
    r = js(env.veil("put", str(f), "--json"))
    other = {**env.env, "VEIL_DELETE_KEY": str(tmp_path / "someone-else.key")}
    (tmp_path / "someone-else.key").write_text("11" * 32)

    def as_other(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=other, capture_output=True,
                              timeout=300)

    # Anyone else, with the read cap, the verify cap or the link, is refused by every node.
    for cap in (r["read_cap"], r["verify_cap"], r["link"]):
        one_error_line(as_other("rm", cap), 10, "refused the delete")
    one_error_line(as_other("rm", r["verify_cap"], "--key", "22" * 32), 10, "refused the delete")
    one_error_line(env.veil("rm", r["verify_cap"], "--key", "nothex"), 2, "64 hex digits")
    assert js(env.veil("check", r["verify_cap"], "--json"))["healthy"] == 10
    # The uploader deletes; every share is gone and the file cannot be read back.
    d = js(env.veil("rm", r["read_cap"], "--json"))
    assert d["deleted"] == 10 and d["refused"] == 0
    one_error_line(env.veil("get", r["read_cap"], "-o", str(tmp_path / "o")), 4, "no node has this file")
    one_error_line(env.veil("rm", r["read_cap"]), 4, "no node holds this file")
    # The key printed by `put --json` works from anywhere (here: a user with another secret).
    r2 = js(env.veil("put", str(f), "--json"))
    assert js(as_other("rm", r2["verify_cap"], "--key", r2["delete_key"], "--json"))["deleted"] == 10


def test_share_links_name_the_configured_gateway(env: RunningDevnet, tmp_path: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("link")
    env.veil("config", "set", "gateway", "https://files.example.org/", check=True)
    try:
        r = js(env.veil("put", str(f), "--json"))
        assert r["link"].startswith("https://files.example.org/f/")
    finally:
        env.veil("config", "unset", "gateway", check=True)
    one_error_line(env.veil("config", "set", "gateway", "ftp://x"), 2, "gateway URL")
    # A network file without a gateway: no link is invented.
    net = json.loads((env.devnet.root / "nodes.json").read_text())
    net.pop("gateway", None)
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(net))
    r = js(env.veil("put", str(f), "--json", "--network", str(bare)))
    assert r["link"] is None
    p = env.veil("put", str(f), "--network", str(bare), check=True)
    assert "link:       (no gateway configured: `veil config set gateway URL`" in p.stdout.decode()
    assert "127.0.0.1:8080" not in p.stdout.decode()


def test_devnet_status_and_down(env: RunningDevnet, tmp_path: Path) -> None:
    st = js(env.veil("devnet", "status", "--json"))
    roles = [n["roles"] for n in st["nodes"]]
    assert sum(1 for r in roles if "storage" in r) == 10 and ["validator"] in roles and ["gateway"] in roles
    assert all(n["health"] == "up" and len(n["node_id"]) == 64 for n in st["nodes"])
    text = env.veil("devnet", "status", check=True).stdout.decode().splitlines()
    assert text[-1].endswith("12 of 12 node processes up: 10 storage nodes + validator + gateway")
    h = text[0].index("HEALTH")  # the health column lines up on every row, under its heading
    assert all(line[h - 2: h + 3] == "  up " or line[h - 2:] == "  up" for line in text[1:-1]), text
    p = env.veil("devnet", "down", "--dir", str(tmp_path / "none"))
    assert p.returncode == 0 and "nothing to stop" in p.stdout.decode()


def test_money_commands_json(env: RunningDevnet, tmp_path: Path) -> None:
    w = create_wallet(tmp_path / "w.wallet", PASS, m_cost_kib=1024)
    faucet(env.devnet, w.address, 3 * UNIT)
    user = {**env.env, "VEIL_WALLET": str(w.path), "VEIL_PASSPHRASE": PASS}

    def veil(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], env=user, capture_output=True,
                              timeout=300)

    bal = js(veil("wallet", "balance", "--json"))
    assert (bal["address"], bal["balance"], bal["channels"]) == (w.address_text, 3 * UNIT, [])
    hist = js(veil("wallet", "history", "--json"))
    got = [t for t in hist["transactions"] if t["kind"] == "transfer"]  # (the faucet also stakes for it)
    assert len(got) == 1 and got[0]["amount"] == 3 * UNIT and got[0]["to"] == w.address_text
    assert all(isinstance(t["height"], int) and len(t["txid"]) == 64 for t in hist["transactions"])
    acct = js(veil("account", "--json", "--unlock"))
    assert acct["balance"] == bal["balance"] and acct["locked"] == 0 and acct["spent_in_cheques"] == 0
    assert acct["allowance_left"] <= acct["allowance"] and acct["earned"] == 0
    assert js(veil("channel", "list", "--json"))["channels"] == []
    led = js(veil("ledger", "info", "--json"))
    assert led["height"] >= 1 and len(led["genesis"]) == 64 and isinstance(led["params"]["allowance_bytes"], int)


def test_downloads_get_the_users_umask(env: RunningDevnet, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(os.urandom(10_000))
    cap = js(env.veil("put", str(f), "--json"))["read_cap"]
    for mask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"m-{mask:o}.bin"
        p = subprocess.run([sys.executable, "-m", "veil.cli.main", "get", cap, "-o", str(out)], env=env.env,
                           capture_output=True, timeout=300, preexec_fn=lambda m=mask: os.umask(m))  # type: ignore[misc]
        assert p.returncode == 0, p.stderr.decode()
        assert out.stat().st_mode & 0o777 == mode


def test_an_interrupted_get_resumes_from_the_verified_bytes(env: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(48_000_000))
    cap = js(env.veil("put", str(src), "--json"))["read_cap"]
    out = tmp_path / "big.out"
    journal = tmp_path / ".big.out.veil-part.json"
    part = tmp_path / ".big.out.veil-part"
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "get", cap, "-o", str(out)], env=env.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads(journal.read_text())["verified"] > 0:
                    break  # at least one checkpoint of verified bytes is on disk
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.005)
        assert proc.poll() is None, "the download ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)  # mid-transfer, no chance to clean up
    finally:
        proc.wait(timeout=60)
    kept = json.loads(journal.read_text())["verified"]
    assert 0 < kept < 48_000_000 and part.stat().st_size >= kept and not out.exists()
    g = js(env.veil("get", cap, "-o", str(out), "--json"))
    assert g["resumed_from"] == kept and g["written"] == 48_000_000 - kept
    assert out.read_bytes() == src.read_bytes()
    assert not part.exists() and not journal.exists()
