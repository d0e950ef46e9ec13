"""`veil config`: settings written to config.toml keep the user's comments, are what the client
then reads, and bad names or values are refused with one line and the file left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.cli.main import main
from veil.client.config import anon_setting, payment_setting
from veil.ledger.amount import UNIT

MINE = '# my settings\n[payments]\nmax_spend = "2"  # two VEIL\n'


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VEIL_HOME", str(tmp_path))
    for var in ("VEIL_ANON", "VEIL_HOPS", "VEIL_MAX_SPEND", "VEIL_DEPOSIT"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config.toml").write_text(MINE)
    return tmp_path


def veil(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `veil ARGS` as the command line does: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = 0
    try:
        main(list(args))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_set_keeps_the_users_lines_and_the_client_reads_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert anon_setting(None, None) == (False, 3)
    assert veil(capsys, "config", "set", "anon", "true")[0] == 0
    assert veil(capsys, "config", "set", "hops", "4")[0] == 0
    assert veil(capsys, "config", "set", "deposit", "0.5")[0] == 0
    text = (home / "config.toml").read_text()
    assert text.startswith(MINE)  # comments and layout survive
    assert anon_setting(None, None) == (True, 4)
    assert payment_setting("deposit") == UNIT // 2
    assert payment_setting("max_spend") == 2 * UNIT
    assert veil(capsys, "config", "get", "hops")[:2] == (0, "4\n")
    code, out, _ = veil(capsys, "config", "list")
    assert code == 0 and "anon       true" in out and "payout     (unset)" in out
    assert veil(capsys, "config", "unset", "anon")[0] == 0
    assert anon_setting(None, None) == (False, 4)
    assert veil(capsys, "config", "get", "anon")[0] == 1


@pytest.mark.parametrize(("name", "value", "why"), [
    ("hops", "9", "between 1 and 5"),
    ("hops", "three", "number of hops"),
    ("anon", "maybe", "true or false"),
    ("max-spend", "lots", "max-spend"),
    ("payout", "xyz", "not a Veil address"),
    ("colour", "red", "no setting 'colour'"),
])  # fmt: skip
def test_bad_values_are_refused_and_nothing_is_written(home: Path, capsys: pytest.CaptureFixture[str], name: str,
                                                       value: str, why: str) -> None:  # fmt: skip
    code, out, err = veil(capsys, "config", "set", name, value)
    assert code != 0 and out == ""
    assert err.startswith("veil: error: ") and err.count("\n") == 1 and why in err
    assert (home / "config.toml").read_text() == MINE


def test_a_broken_file_is_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text("[anon\nenabled = true\n")
    code, _, err = veil(capsys, "config", "set", "anon", "true")
    assert code != 0 and "cannot read" in err and "config.toml" in err
    assert (home / "config.toml").read_text() == "[anon\nenabled = true\n"
