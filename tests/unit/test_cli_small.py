"""Small CLI behaviours that need no network: help texts, shell completion, a reversed --range,
and the progress bar's width."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

from rich.console import Console

from veil.cli.common import make_progress
from veil.format.caps import ReadCap


def veil(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80", **env})  # fmt: skip


def test_wallet_help_lines_are_whole_and_name_veil_home() -> None:
    out = veil("wallet", "--help").stdout
    assert "...\n" not in out.split("Commands:")[1] and "(e.g." not in out  # no short help cut off
    assert "$VEIL_HOME/wallet" in out and "~/.veil" not in out
    for cmd in (["put"], ["get"], ["check"], ["repair"], ["account"], ["wallet", "balance"]):
        text = veil(*cmd, "--help").stdout
        assert "~/.veil" not in text, cmd


def test_completion_scripts_and_completions() -> None:
    for shell in ("bash", "zsh", "fish"):
        p = veil("completion", shell)
        assert p.returncode == 0 and "_VEIL_COMPLETE" in p.stdout, shell
    p = veil(COMP_WORDS="veil dev", COMP_CWORD="1", _VEIL_COMPLETE="bash_complete")
    assert "devnet" in p.stdout
    p = veil("completion", "tcsh")
    assert p.returncode == 2 and "tcsh" in p.stderr


def test_a_reversed_range_is_one_line() -> None:
    cap = ReadCap(b"\x01" * 32, b"\x02" * 32).to_string()
    p = veil("get", cap, "--range", "10-5", "--network", "/nonexistent.json")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "reversed" in p.stderr


def test_the_progress_bar_fits_80_columns() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with make_progress(console) as p:
        t = p.add_task("downloading · free 98.7 GB · spent 123456.000000001 VEIL", total=30_000_000_000)
        p.update(t, completed=12_345_678_901)
        p.refresh()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # cursor and erase sequences take no columns
    lines = [ln for ln in plain.replace("\r", "\n").splitlines() if ln.strip()]
    assert lines and all(len(ln.rstrip()) <= 80 for ln in lines), lines
