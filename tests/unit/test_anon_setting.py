"""Where `--anon` and `--hops` come from: the command line, VEIL_ANON/VEIL_HOPS, config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.config import anon_setting
from veil.errors import UsageError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VEIL_HOME", str(tmp_path))
    monkeypatch.delenv("VEIL_ANON", raising=False)
    monkeypatch.delenv("VEIL_HOPS", raising=False)
    return tmp_path


def test_default_is_direct_with_three_hops(home: Path) -> None:
    assert anon_setting(None, None) == (False, 3)


def test_config_then_env_then_flag(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config.toml").write_text("[anon]\nenabled = true\nhops = 2\n")
    assert anon_setting(None, None) == (True, 2)
    monkeypatch.setenv("VEIL_ANON", "0")
    monkeypatch.setenv("VEIL_HOPS", "4")
    assert anon_setting(None, None) == (False, 4)
    assert anon_setting(True, 1) == (True, 1)


@pytest.mark.parametrize(("var", "value", "msg"), [
    ("VEIL_ANON", "maybe", "VEIL_ANON must be 1 or 0"),
    ("VEIL_HOPS", "three", "VEIL_HOPS must be a number"),
    ("VEIL_HOPS", "9", "--hops must be between 1 and 5"),
])  # fmt: skip
def test_bad_settings_are_one_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str,
                                          msg: str) -> None:  # fmt: skip
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError, match=msg):
        anon_setting(None, None)


def test_bad_hops_in_config(home: Path) -> None:
    (home / "config.toml").write_text('[anon]\nhops = "x"\n')
    with pytest.raises(UsageError, match=r"\[anon\] hops"):
        anon_setting(None, None)
