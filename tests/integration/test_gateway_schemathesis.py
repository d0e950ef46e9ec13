"""schemathesis against the gateway's own OpenAPI document (/api/openapi.json) on a real
devnet: generated and mutated requests for every operation, every HTTP method (undeclared ones
must get 405 with Allow), and stateful upload sequences must never get a 5xx, and responses
must match the documented status codes and content types."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CHECKS = "not_a_server_error,unsupported_method,status_code_conformance,content_type_conformance"


def test_schemathesis_finds_no_server_errors(devnet: Any, tmp_path: Path) -> None:
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe is not None, "schemathesis is a test dependency (pyproject [test] extras)"
    url = f"{devnet.net.gateway}/api/openapi.json"
    p = subprocess.run(
        [exe, "run", url, "--checks", CHECKS, "--max-examples", "60", "--seed", "20261121", "--workers", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    tail = "\n".join(p.stdout.splitlines()[-60:])
    assert p.returncode == 0, f"schemathesis found failures:\n{tail}\n{p.stderr[-2000:]}"
    assert " passed" in p.stdout
