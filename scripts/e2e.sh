#!/usr/bin/env bash
# Run the end-to-end suite: scripts/e2e.sh [pytest args...]
#   CHRONICLE_TEST_TARGET=reference  run against `temporal server start-dev`
#   CHRONICLE_BIN=/path/to/chronicle  binary to test (default target/release/chronicle)
# Exits non-zero on any failure, including "no tests collected" (pytest exit 5).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/e2e-setup.sh"

cd "$ROOT"
# Default to the whole suite unless a test path (file, dir or node id) is given.
targets=(tests/e2e)
for arg in "$@"; do
    if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then
        targets=()
        break
    fi
done
set +e
"$ROOT/.venv/bin/python" -m pytest "${targets[@]}" "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "e2e: no tests were collected; treating as failure" >&2
    exit 1
fi
exit $rc
