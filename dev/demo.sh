#!/usr/bin/env bash
# Quick start, step 1: install, start a 10-node devnet on 127.0.0.1, upload a sample file,
# print its link, download it back and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export VEIL_HOME="${VEIL_HOME:-$PWD/.veil-devnet}"
veil devnet up --nodes 10
veil devnet status
sample="$VEIL_HOME/sample.bin"
head -c 20000000 /dev/urandom > "$sample"
echo "uploading $(du -h "$sample" | cut -f1) sample file..."
veil put --json "$sample" > "$VEIL_HOME/sample.json"   # one line of JSON (docs/specs/cli-json.md)
field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$VEIL_HOME/sample.json" "$1"; }
cap=$(field read_cap)
echo "read cap: $cap"
echo "link:     $(field link)"
veil get "$cap" -o "$VEIL_HOME/sample.out" --force
cmp "$sample" "$VEIL_HOME/sample.out" && echo "demo: downloaded file is byte-identical to the upload"
echo "the devnet keeps running; stop it with: VEIL_HOME=$VEIL_HOME .venv/bin/veil devnet down"
