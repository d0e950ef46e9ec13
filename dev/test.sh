#!/usr/bin/env bash
# Quick start, step 2: install everything the tests need, then lint, type-check and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
<<<<<<< HEAD
bash dev/system-deps.sh chromium rclone  # rclone: the S3 endpoint's tests
=======
bash dev/system-deps.sh chromium systemd nginx  # systemd-analyze verifies deploy/*.service; nginx fronts a gateway as docs/operating.md shows
>>>>>>> main
.venv/bin/ruff check src tests
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
