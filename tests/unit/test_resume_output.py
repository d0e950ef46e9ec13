"""The resumable part file of `veil get -o F` (client/output.py): what a journal may claim."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from veil.client import output
from veil.client.output import AtomicOutput


def _interrupted(tmp_path: Path, ident: str, data: bytes) -> None:
    with pytest.raises(KeyboardInterrupt), AtomicOutput(str(tmp_path / "f.bin"), resume=ident) as f:
        f.write(data)
        raise KeyboardInterrupt


def test_interrupted_bytes_are_kept_and_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "CHECKPOINT", 1000)
    _interrupted(tmp_path, "a" * 64, b"x" * 2500)
    journal = json.loads((tmp_path / ".f.bin.veil-part.json").read_text())
    assert journal == {"v": 1, "file": "a" * 64, "verified": 2500}  # the interrupt checkpointed all of it
    sink = AtomicOutput(str(tmp_path / "f.bin"), resume="a" * 64)
    with sink as f:
        assert sink.offset == 2500
        f.write(b"y" * 10)
    assert (tmp_path / "f.bin").read_bytes() == b"x" * 2500 + b"y" * 10
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_a_journal_for_another_file_or_claiming_too_much_starts_over(tmp_path: Path) -> None:
    _interrupted(tmp_path, "a" * 64, b"x" * 100)
    sink = AtomicOutput(str(tmp_path / "g.bin"), resume="b" * 64)  # another target: nothing to resume
    with sink:
        assert sink.offset == 0
    sink = AtomicOutput(str(tmp_path / "f.bin"), resume="b" * 64)  # another file's journal
    with sink as f:
        assert sink.offset == 0
        f.write(b"z")
    assert (tmp_path / "f.bin").read_bytes() == b"z"
    (tmp_path / ".f2.bin.veil-part").write_bytes(b"x" * 10)
    (tmp_path / ".f2.bin.veil-part.json").write_text(json.dumps({"v": 1, "file": "c" * 64, "verified": 50}))
    sink = AtomicOutput(str(tmp_path / "f2.bin"), resume="c" * 64)
    with sink:
        assert sink.offset == 0  # the journal claims more than the part file holds


def test_without_resume_a_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), AtomicOutput(str(tmp_path / "h.bin")) as f:
        f.write(b"x")
        raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
