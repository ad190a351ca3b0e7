"""TypeScript SDK smoke test: tests/ts/smoke.js (a worker, one workflow calling one
activity, then list + count through visibility) run with node against `server`.

Its packages come from `npm ci` in tests/ts (scripts/ts-setup.sh, called by
scripts/e2e-setup.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

TS_DIR = Path(__file__).resolve().parents[1] / "ts"
SMOKE_TIMEOUT_S = 100


def test_typescript_sdk_smoke(server):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Debian: apt-get install nodejs npm; then scripts/e2e-setup.sh)")
    if not (TS_DIR / "node_modules" / "@temporalio" / "worker").is_dir():
        pytest.fail(f"{TS_DIR}/node_modules is missing: run scripts/e2e-setup.sh")

    try:
        proc = subprocess.run(
            [node, "smoke.js", server.address, server.namespace],
            cwd=TS_DIR, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"TypeScript smoke test timed out after {SMOKE_TIMEOUT_S}s\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}")
    report = f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, report

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True, report
    assert summary["result"] == "HELLO, CHRONICLE! (ACTIVITY COMPOSE, ATTEMPT 1)"
    assert summary["listed"] == 1 and summary["count"] == 1
    assert summary["workflowId"].startswith("ts-smoke-wf-") and summary["runId"]
