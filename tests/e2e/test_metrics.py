"""The Prometheus endpoint: valid exposition format, Temporal's metric names, counters
that move as workflows run.

`promtool check metrics` (Debian's `prometheus` package, installed by
scripts/e2e-setup.sh) must parse the output. Its lint also flags counters without a
`_total` suffix; Temporal's own names (`service_requests`, `workflow_success`...) have
none and are kept so Temporal's dashboards work, so only those complaints are allowed
of Chronicle, and never about its own (`chronicle_*`) metrics.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import urllib.request

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from conftest import _dispose, _free_port, _start_server
from helpers import eventually, new_worker, unique

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
ALLOWED_LINT = ('counter metrics should have "_total" suffix', 'should not have "_count" suffix')


@workflow.defn
class Succeeds:
    @workflow.run
    async def run(self) -> str:
        return "ok"


@workflow.defn
class Fails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("no", non_retryable=True)


@pytest.fixture
def metered_server(request: pytest.FixtureRequest):
    port = _free_port()
    env = {"CHRONICLE_METRICS_PORT": str(port), "CHRONICLE_SERVER_METRICS_PORT": str(port)}
    handle = _start_server("metrics", env=env)
    # The reference gets its metrics port from the conftest's own command line.
    handle.metrics_url = f"http://127.0.0.1:{handle._extra_ports[1] if handle.is_reference else port}/metrics"
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _sum(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool not found: scripts/e2e-setup.sh installs Debian's prometheus package")
    return found


async def test_metrics_are_valid_prometheus_and_move_as_workflows_run(metered_server):
    client = await metered_server.client()
    before = _scrape(metered_server.metrics_url)
    task_queue = unique("metrics")
    async with new_worker(client, task_queue, workflows=[Succeeds, Fails]):
        for _ in range(3):
            assert await client.execute_workflow(Succeeds.run, id=unique("m-ok"), task_queue=task_queue) == "ok"
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(Fails.run, id=unique("m-fail"), task_queue=task_queue)
    # The reference publishes its counters on a reporting interval: scrape until they moved.
    after = await eventually(
        lambda: asyncio.to_thread(_scrape, metered_server.metrics_url),
        lambda text: _sum(text, "workflow_failed", namespace="default") > _sum(before, "workflow_failed", namespace="default"),
        what="the workflow counters to move",
        timeout=15,
    )

    checked = subprocess.run([_promtool(), "check", "metrics"], input=after, capture_output=True, text=True)
    assert checked.returncode in (0, 3), checked.stderr + checked.stdout
    # The reference's output has lint problems of other kinds too (camelCase labels...).
    problems = [] if metered_server.is_reference else (checked.stdout + checked.stderr).splitlines()
    for problem in problems:
        assert any(allowed in problem for allowed in ALLOWED_LINT), problem
        assert not problem.startswith("chronicle_"), problem

    def moved(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    frontend = {"namespace": "default", "service_name": "frontend"}
    assert moved("service_requests", operation="StartWorkflowExecution", **frontend) >= 4
    assert moved("service_latency_count", operation="StartWorkflowExecution", **frontend) >= 4
    assert moved("service_requests", operation="RespondWorkflowTaskCompleted", **frontend) >= 4
    assert moved("workflow_success", namespace="default") == 3
    assert moved("workflow_failed", namespace="default") == 1
    assert moved("task_schedule_to_start_latency_count", namespace="default", task_type="Workflow") >= 4
    assert moved("persistence_latency_count") > 0
    if not metered_server.is_reference:
        assert _sum(after, "chronicle_shards_owned") >= 1
        if metered_server.backend == "sqlite":  # the group commit is SQLite's writer
            assert moved("chronicle_group_commit_size_count") > 0
            assert moved("chronicle_group_commit_latency_count") > 0
        assert _sum(after, "chronicle_state_cache_bytes") > 0
        assert moved("chronicle_state_cache_lookups_total") > 0
