"""deploy/*.service: systemd accepts them, they keep their hardening, and they only use options `veil` has."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from veil.cli.gateway import gateway
from veil.cli.node import run

DEPLOY = Path(__file__).parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
SECTIONS = {"Unit", "Service", "Install"}
KEY = re.compile(r"[A-Z][A-Za-z0-9]*")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
             "PrivateDevices": "yes", "DynamicUser": "yes", "RestrictNamespaces": "yes"}


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A strict reading of systemd's unit syntax: [Section] lines, Key=Value lines (a key may repeat),
    backslash continuations, # and ; comments. Anything else fails."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"line {i}: bad section header {line!r}"
            current = line[1:-1]
            assert current in SECTIONS, f"line {i}: unexpected section {current!r}"
            assert current not in sections, f"line {i}: section {current!r} twice"
            sections[current] = []
            continue
        assert current is not None, f"line {i}: key outside a section"
        key, eq, value = line.partition("=")
        assert eq and KEY.fullmatch(key), f"line {i}: not Key=Value: {line!r}"
        while value.endswith("\\"):
            assert i < len(lines), "continuation at end of file"
            value = value[:-1] + " " + lines[i].strip()
            i += 1
        sections[current].append((key, value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_unit_is_strict_ini_with_hardening(path: Path) -> None:
    unit = parse_unit(path.read_text())
    assert set(unit) == SECTIONS
    for key, want in HARDENING.items():
        assert values(unit, "Service", key) == [want], f"{path.name}: {key} should be {want}"
    state = values(unit, "Service", "StateDirectory")
    assert len(state) == 1
    rw = " ".join(values(unit, "Service", "ReadWritePaths")).split()
    assert f"/var/lib/{state[0]}" in rw, "the data dir must be writable under ProtectSystem=strict"
    assert values(unit, "Service", "CapabilityBoundingSet") == [""]
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_units_cover_a_node_and_a_gateway() -> None:
    assert {p.name for p in UNITS} >= {"veil-node.service", "veil-gateway.service"}


def _exec_args(path: Path) -> list[str]:
    (cmd,) = values(parse_unit(path.read_text()), "Service", "ExecStart")
    return [a for a in shlex.split(cmd) if not a.startswith("$")]


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_exec_start_uses_only_real_options(path: Path) -> None:
    """Every --option in ExecStart is one `veil node run` / `veil gateway` has (their --help lists it)."""
    args = _exec_args(path)
    assert args[0] == "/opt/veil/bin/veil"
    command = run if args[1:3] == ["node", "run"] else gateway
    assert args[1] in ("node", "gateway")
    helptext = CliRunner().invoke(command, ["--help"], terminal_width=200).output
    for opt in (a.split("=")[0] for a in args if a.startswith("--")):
        assert re.search(rf"(^|[\s,]){re.escape(opt)}[\s=,]", helptext), f"{path.name}: {opt} is not an option"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own check (dev/test.sh installs systemd). The veil path in
    ExecStart is pointed at this checkout's script, since verify insists the binary exists."""
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is not installed: dev/test.sh installs Debian's systemd"
    veil = Path(sys.executable).with_name("veil")
    assert veil.exists()
    copies = []
    for path in UNITS:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace("/opt/veil/bin/veil", str(veil)))
        copies.append(str(copy))
    p = subprocess.run([tool, "verify", *copies], capture_output=True, text=True, timeout=120)
    noise = [ln for ln in (p.stdout + p.stderr).splitlines() if any(Path(c).name in ln for c in copies)]
    assert p.returncode == 0 and not noise, p.stdout + p.stderr


def test_strict_reader_refuses_garbage() -> None:
    with pytest.raises(AssertionError):
        parse_unit("[Service]\nthis is not a key\n")
    with pytest.raises(AssertionError):
        parse_unit("[Srvice]\nExecStart=/bin/true\n")
    with pytest.raises(AssertionError):
        parse_unit("ExecStart=/bin/true\n")
