#!/usr/bin/env bash
# Quick start, step 2: install everything the tests need, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
bash dev/system-deps.sh chromium systemd nginx rclone  # systemd-analyze verifies deploy/*.service; nginx fronts a gateway as docs/operating.md shows; rclone: the S3 endpoint's tests
.venv/bin/ruff check src tests
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
