#!/usr/bin/env bash
# Idempotently install the TypeScript SDK smoke test's packages (tests/ts/node_modules)
# with `npm ci` from the committed package-lock.json. Reinstalls only when the lock file
# changes (its hash is kept in node_modules) or node_modules is missing. Needs Node.js
# (>= 20.3) with npm, and the npm registry. The @temporalio/worker native core bridge
# comes prebuilt inside its npm package, so nothing is compiled here.
# Without node/npm it only warns: tests/e2e/test_typescript.py then fails with a message.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TS="$ROOT/tests/ts"
LOCK="$TS/package-lock.json"
STAMP="$TS/node_modules/.ts-setup.sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "ts-setup: node/npm not found; skipping the TypeScript smoke test setup" \
         "(Debian: apt-get install nodejs npm)" >&2
    exit 0
fi

want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -d "$TS/node_modules/@temporalio/worker" ]]; then
    exit 0
fi

echo "ts-setup: npm ci in $TS" >&2
# --ignore-scripts: no package needs an install script (the core bridge is prebuilt),
# and skipping them keeps the install the same on every npm version.
(cd "$TS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
# Check that the worker and its native core bridge load on this machine.
(cd "$TS" && node -e "require('@temporalio/worker'); require('@temporalio/client')")
echo "$want" > "$STAMP"
echo "ts-setup: done (node $(node --version))" >&2
