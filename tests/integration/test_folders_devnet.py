"""Folders on a real devnet (node processes over TLS, the real `veil` CLI): trees round-trip
through put -r / get -r byte for byte; ls, rm, mv, ln, cat, aliases, versions; stale and lying
nodes do not roll a folder back; two writer processes lose nothing; a hostile folder written by
hand cannot make a download write outside its target; garbled caps fail with one line;
repair -r after nodes are killed."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from devnet_helpers import RunningDevnet

from veil.client.folders import add_entry, create_folder, read_folder
from veil.client.mutable_io import slot_nodes
from veil.client.network import Network, load_network
from veil.client.upload import upload
from veil.format.folder import FILE, Entry, Listing
from veil.format.folder_caps import new_folder
from veil.format.folder_seal import seal_body
from veil.format.mutable import sign_record

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(devnet: RunningDevnet) -> Iterator[Network]:
    n = load_network(devnet.devnet.root / "nodes.json")
    yield n
    n.close()


def _ok(d: RunningDevnet, *args: str) -> str:
    return d.veil(*args, check=True).stdout.decode()


def _caps(out: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def _tree(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        for x in dirs:
            out[os.path.relpath(os.path.join(dirpath, x), root) + "/"] = None
        for f in files:
            out[os.path.relpath(os.path.join(dirpath, f), root)] = Path(dirpath, f).read_bytes()
    return out


def _error_line(p: subprocess.CompletedProcess[bytes]) -> str:
    err = p.stderr.decode().strip().splitlines()
    assert p.returncode != 0 and len(err) == 1 and err[0].startswith("veil: error: "), p.stderr
    return err[0]


def test_a_tree_round_trips_through_put_r_and_get_r(devnet: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "album"
    (src / "2024" / "summer" / "deep").mkdir(parents=True)
    (src / "empty folder").mkdir()
    (src / "zero.bin").write_bytes(b"")
    (src / "2024" / "naïve café ☕.txt").write_text("unicode\n")
    (src / "2024" / "summer" / "日本語.md").write_text("# hi\n")
    (src / "2024" / "summer" / "deep" / "big.bin").write_bytes(os.urandom(24 << 20))
    for i in range(20):
        (src / "2024" / f"small-{i:02d}.dat").write_bytes(os.urandom(i * 997))
    top = _caps(_ok(devnet, "mkdir"))
    _ok(devnet, "put", "-r", str(src), "--to", top["write cap"] + "/photos")
    out = tmp_path / "out"
    _ok(devnet, "get", "-r", top["link"], "-o", str(out))  # the folder link reads the subtree
    assert _tree(out) == {"photos/": None, **{"photos/" + k: v for k, v in _tree(src).items()}}
    sub = tmp_path / "sub"  # a subtree, by path
    _ok(devnet, "get", "-r", top["read cap"] + "/photos/2024/summer", "-o", str(sub))
    assert _tree(sub) == _tree(src / "2024" / "summer")


def test_ls_rm_mv_ln_cat_aliases_and_versions(devnet: RunningDevnet, tmp_path: Path) -> None:
    w = _caps(_ok(devnet, "mkdir", "--alias", "docs"))
    assert w["link"].startswith(devnet.devnet.config()["gateway"] + "/d/") and "#" in w["link"]
    from veil.format.folder_caps import parse_folder_cap

    assert parse_folder_cap(w["write link"].split()[0]) == parse_folder_cap(w["write cap"])
    assert "docs:" in _ok(devnet, "alias", "list")
    f = tmp_path / "note.txt"
    f.write_text("hello folder\n")
    rc = _ok(devnet, "put", "-q", str(f)).strip()
    _ok(devnet, "mkdir", "docs:projects")
    _ok(devnet, "ln", rc, "docs:projects/note.txt")
    assert _ok(devnet, "cat", "docs:projects/note.txt") == "hello folder\n"
    _ok(devnet, "mv", "docs:projects/note.txt", "docs:projects/renamed.txt")
    _ok(devnet, "mv", "docs:projects/renamed.txt", "docs:")  # into the root
    rows = json.loads(_ok(devnet, "ls", "--json", "docs:"))
    assert {(r["name"], r["kind"]) for r in rows} == {("projects", "folder"), ("renamed.txt", "file")}
    assert json.loads(_ok(devnet, "ls", "--json", "docs:projects")) == []
    assert "renamed.txt" in _ok(devnet, "ls", "-l", w["read cap"])
    _ok(devnet, "rm", "docs:renamed.txt")
    assert _ok(devnet, "ls", "docs:").split() == ["projects/"]
    # a read cap reads but cannot write
    assert "read-only" in _error_line(devnet.veil("mkdir", w["read cap"] + "/nope"))
    # versions: every change above is one version; restore brings the file back
    versions = json.loads(_ok(devnet, "ls", "--versions", "--json", "docs:"))
    assert [v["version"] for v in versions] == sorted((v["version"] for v in versions), reverse=True)
    had_file = next(v["version"] for v in versions if v["entries"] == 2)
    assert "renamed.txt" in _ok(devnet, "ls", "--version", str(had_file), "docs:")
    _ok(devnet, "restore", "docs:", "--version", str(had_file))
    assert sorted(_ok(devnet, "ls", "docs:").split()) == ["projects/", "renamed.txt"]
    out = tmp_path / "v"
    _ok(devnet, "get", "-r", "docs:", "--version", "1", "-o", str(out))
    assert _tree(out) == {}


def _db(devnet: RunningDevnet, name: str) -> sqlite3.Connection:
    return sqlite3.connect(str(devnet.devnet.root / name / "mutable" / "slots.sqlite"), timeout=30)


def test_stale_and_lying_nodes_do_not_roll_a_folder_back(devnet: RunningDevnet, net: Network) -> None:
    res = upload(net, io.BytesIO(b"content"), 7, "f")
    entry = Entry("old", FILE, res.cap.to_string(), size=7)
    wcap = create_folder(net)  # version 1
    add_entry(net, read_folder(net, wcap), entry)  # 2
    add_entry(net, read_folder(net, wcap), replace(entry, name="new"))  # 3
    w, slot = wcap.to_string(), wcap.slot_id
    order = slot_nodes(net, slot).nodes
    # The first three nodes a reader asks are rolled back to version 2 (an old copy of the
    # node's store), the fourth serves a forged record.
    for node in order[:3]:
        with _db(devnet, node.name) as db:
            db.execute("DELETE FROM versions WHERE slot = ? AND seq > 2", (slot,))
    with _db(devnet, order[3].name) as db:
        db.execute("UPDATE versions SET record = ? WHERE slot = ? AND seq = 3", (b"VLMS" + bytes(200), slot))
    assert sorted(_ok(devnet, "ls", w).split()) == ["new", "old"]
    # A writer gets through too (built on version 3, not on what the stale nodes hold).
    _ok(devnet, "rm", w + "/old")
    assert _ok(devnet, "ls", w).split() == ["new"]


WRITER = """
import sys
from veil.client.folders import add_entry, read_folder
from veil.client.network import load_network
from veil.format.caps import ReadCap
from veil.format.folder import FILE, Entry
from veil.format.folder_caps import parse_folder_cap
net = load_network()
w = parse_folder_cap(sys.argv[1])
for i in range(int(sys.argv[3])):
    cap = ReadCap(bytes([i + 1]) * 32, bytes(32)).to_string()
    add_entry(net, read_folder(net, w), Entry(f"{sys.argv[2]}-{i:02d}", FILE, cap, size=1))
net.close()
"""


def test_two_writer_processes_hammering_one_folder_lose_nothing(devnet: RunningDevnet) -> None:
    w = _caps(_ok(devnet, "mkdir"))["write cap"]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, w, tag, "12"], env=devnet.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for tag in ("a", "b")]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    names = {r["name"] for r in json.loads(_ok(devnet, "ls", "--json", w))}
    assert names == {f"{t}-{i:02d}" for t in "ab" for i in range(12)}


def test_a_hostile_folder_is_refused_on_download(devnet: RunningDevnet, net: Network, tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(b"pwned")
    cap = _ok(devnet, "put", "-q", str(payload)).strip()
    w = new_folder()
    bad = ["../x", "/etc/veil-test-x", "a/../../x", "..", "ok"]
    listing = Listing(entries=tuple(sorted((Entry(n, FILE, cap, size=5) for n in bad), key=lambda e: e.name)))
    rec = sign_record(w.signing_key, 1, seal_body(w, 1, listing))  # by hand: no writer-side checks
    for node in slot_nodes(net, w.slot_id).nodes:
        assert net.transport.put_slot(node, w.slot_id, rec.raw, None).stored
    jail = tmp_path / "jail"
    target = jail / "in" / "target"
    p = devnet.veil("get", "-r", w.read_cap().to_string(), "-o", str(target))
    err = p.stderr.decode().strip().splitlines()
    assert p.returncode == 1 and err[-1] == ("veil: error: 4 entries were refused or skipped (warnings above); "
                                             "everything else was downloaded"), p.stderr  # fmt: skip
    assert sum("refused entry" in line for line in err) == 4
    assert _tree(jail) == {"in/": None, "in/target/": None, "in/target/ok": b"pwned"}
    assert not (tmp_path / "x").exists() and not Path("/etc/veil-test-x").exists()


def test_garbled_caps_fail_with_one_clear_line(devnet: RunningDevnet, tmp_path: Path) -> None:
    w = _caps(_ok(devnet, "mkdir"))["write cap"]
    assert "garbled" in _error_line(devnet.veil("ls", w[:-3] + "aaa"))
    assert "not a folder" in _error_line(devnet.veil("ls", "garbage"))
    assert "file cap" in _error_line(devnet.veil("get", "-r", "veil:r1:" + "a" * 40, "-o", str(tmp_path / "o")))
    assert "no alias" in _error_line(devnet.veil("cat", "nosuch:file"))
    assert "'..'" in _error_line(devnet.veil("ls", w + "/a/../b"))


def test_check_r_and_repair_r_after_nodes_are_killed(devnet: RunningDevnet, tmp_path: Path) -> None:
    src = tmp_path / "t"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.bin").write_bytes(os.urandom(1_500_000))
    (src / "g.txt").write_text("g")
    caps = _caps(_ok(devnet, "put", "-r", str(src)))
    assert devnet.veil("check", "-r", caps["verify cap"]).returncode == 0
    storage = [s.name for s in devnet.devnet.specs() if "storage" in s.roles]
    for name in storage[-2:]:
        _ok(devnet, "devnet", "kill", name)
    p = devnet.veil("repair", "-r", caps["verify cap"])
    out = p.stdout.decode()
    assert "repaired: 2 folders, 0 pages, 2 files" in out, out + p.stderr.decode()
    p = devnet.veil("check", "-r", caps["verify cap"])
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    back = tmp_path / "back"
    _ok(devnet, "get", "-r", caps["read cap"], "-o", str(back))
    assert _tree(back) == _tree(src)
