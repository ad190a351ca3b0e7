"""The official Temporal Rust SDK, unmodified, runs a workflow end to end.

Runs the `hello` binary from examples/hello (worker + starter in one process:
an activity, then a 500 ms timer) against the server under test, then checks
the recorded history with the Python SDK. Build the binary first:
    cargo build --release -p chronicle-example-hello
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from helpers import history_event_types, unique

REPO_ROOT = Path(__file__).resolve().parents[2]
# The binary bounds itself at 60 s; this only catches a wedged process.
RUN_TIMEOUT_S = 90


def _example_bin() -> str:
    path = Path(os.environ.get("CHRONICLE_EXAMPLE_BIN") or REPO_ROOT / "target" / "release" / "hello")
    if not path.is_file():
        pytest.fail(
            f"Rust example binary not found at {path}: build it with "
            "`cargo build --release -p chronicle-example-hello` or set CHRONICLE_EXAMPLE_BIN"
        )
    return str(path)


async def test_rust_sdk_hello_workflow(server):
    task_queue = unique("tq-rust-hello")
    proc = await asyncio.create_subprocess_exec(
        _example_bin(),
        "--address", server.address,
        "--namespace", server.namespace,
        "--task-queue", task_queue,
        "--name", "Chronicle",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"Rust example still running after {RUN_TIMEOUT_S}s")
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    context = f"exit={proc.returncode}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"

    assert proc.returncode == 0, context
    lines = stdout.splitlines()
    assert "result: Hello, Chronicle!" in lines, context
    workflow_ids = [line.removeprefix("workflow_id: ") for line in lines if line.startswith("workflow_id: ")]
    assert len(workflow_ids) == 1, context

    client = await server.client()
    events = await history_event_types(client.get_workflow_handle(workflow_ids[0]))
    assert "ACTIVITY_TASK_COMPLETED" in events, events
    assert "TIMER_FIRED" in events, events
    # The timer is started only after the activity's result is delivered.
    assert events.index("ACTIVITY_TASK_COMPLETED") < events.index("TIMER_FIRED"), events
    assert events[-1] == "WORKFLOW_EXECUTION_COMPLETED", events
