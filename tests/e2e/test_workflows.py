"""Workflow lifecycle: timers, signals, cancel/terminate/fail, ids, retries, describe."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)

from helpers import event_name, history_event_types, history_events, new_worker, unique


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> float:
        started = workflow.now()
        await asyncio.sleep(seconds)  # becomes a durable server-side timer
        return (workflow.now() - started).total_seconds()


@workflow.defn
class SignalWorkflow:
    """Waits for `expected` greet signals and greets everyone it heard of."""

    def __init__(self) -> None:
        self._names: list[str] = []

    @workflow.signal
    def greet(self, name: str) -> None:
        self._names.append(name)

    @workflow.run
    async def run(self, expected: int) -> str:
        await workflow.wait_condition(lambda: len(self._names) >= expected)
        return "hello " + ", ".join(self._names)


@workflow.defn
class WaitForeverWorkflow:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "unreachable"


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("workflow broke", "some detail", 7, type="CustomFailure")


@workflow.defn
class FailFirstAttemptWorkflow:
    @workflow.run
    async def run(self) -> int:
        attempt = workflow.info().attempt
        if attempt < 2:
            raise ApplicationError(f"failing attempt {attempt}")
        return attempt


# Per-workflow-id run counts of workflow code (workers run in this process).
TASK_RUNS: dict[str, int] = {}


@workflow.defn
class BrokenFirstTaskWorkflow:
    """Its first workflow task raises a non-Temporal error: the SDK fails the task (not the
    workflow), and the server must schedule another attempt."""

    @workflow.run
    async def run(self) -> str:
        wf_id = workflow.info().workflow_id
        TASK_RUNS[wf_id] = TASK_RUNS.get(wf_id, 0) + 1
        if TASK_RUNS[wf_id] == 1:
            raise RuntimeError("bug in workflow code")
        return f"attempt {workflow.info().attempt} of the workflow, task run {TASK_RUNS[wf_id]}"


@workflow.defn
class SlowFirstTaskWorkflow:
    """Its first workflow task outlives the 1 s task timeout (blocking, as buggy code does)."""

    @workflow.run
    async def run(self) -> str:
        wf_id = workflow.info().workflow_id
        TASK_RUNS[wf_id] = TASK_RUNS.get(wf_id, 0) + 1
        if TASK_RUNS[wf_id] == 1:
            time.sleep(1.5)
        return "done"


async def test_failed_workflow_task_is_retried(client):
    tq, wf_id = unique("tq"), unique("wf-task-failure")
    async with new_worker(client, tq, workflows=[BrokenFirstTaskWorkflow]):
        result = await client.execute_workflow(BrokenFirstTaskWorkflow.run, id=wf_id, task_queue=tq)
    assert result == "attempt 1 of the workflow, task run 2"
    events = await history_events(client.get_workflow_handle(wf_id))
    names = [event_name(e.event_type) for e in events]
    assert names[:4] == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED",
    ]
    assert "bug in workflow code" in events[3].workflow_task_failed_event_attributes.failure.message
    # The second attempt is recorded once it completes, with its attempt number.
    retried = events[names.index("WORKFLOW_TASK_SCHEDULED", 4)]
    assert retried.workflow_task_scheduled_event_attributes.attempt == 2
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_timed_out_workflow_task_is_retried(client):
    tq, wf_id = unique("tq"), unique("wf-task-timeout")
    async with new_worker(client, tq, workflows=[SlowFirstTaskWorkflow]):
        result = await client.execute_workflow(
            SlowFirstTaskWorkflow.run, id=wf_id, task_queue=tq, task_timeout=timedelta(seconds=1)
        )
    assert result == "done"
    names = await history_event_types(client.get_workflow_handle(wf_id))
    assert names[3] == "WORKFLOW_TASK_TIMED_OUT"
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_timer_fires_after_duration(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[TimerWorkflow]):
        began = time.monotonic()
        handle = await client.start_workflow(TimerWorkflow.run, 1.0, id=unique("wf-timer"), task_queue=tq)
        workflow_elapsed = await handle.result()
        wall_elapsed = time.monotonic() - began
    assert wall_elapsed >= 1.0
    assert workflow_elapsed >= 1.0
    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert names.count("TIMER_STARTED") == 1 and names.count("TIMER_FIRED") == 1
    started = events[names.index("TIMER_STARTED")]
    fired = events[names.index("TIMER_FIRED")]
    assert started.event_id < fired.event_id
    assert started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == timedelta(seconds=1)
    assert fired.timer_fired_event_attributes.timer_id == started.timer_started_event_attributes.timer_id
    assert fired.timer_fired_event_attributes.started_event_id == started.event_id
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_signal_drives_result(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[SignalWorkflow]):
        handle = await client.start_workflow(SignalWorkflow.run, 2, id=unique("wf-signal"), task_queue=tq)
        await handle.signal(SignalWorkflow.greet, "alice")
        await handle.signal(SignalWorkflow.greet, "bob")
        assert await handle.result() == "hello alice, bob"
    assert (await history_event_types(handle)).count("WORKFLOW_EXECUTION_SIGNALED") == 2


async def test_signal_with_start(client):
    tq, wf_id = unique("tq"), unique("wf-signal-start")
    async with new_worker(client, tq, workflows=[SignalWorkflow]):
        first = await client.start_workflow(
            SignalWorkflow.run, 2, id=wf_id, task_queue=tq, start_signal="greet", start_signal_args=["carol"]
        )
        # On a running workflow signal-with-start only signals the existing run.
        second = await client.start_workflow(
            SignalWorkflow.run, 2, id=wf_id, task_queue=tq, start_signal="greet", start_signal_args=["dave"]
        )
        assert second.result_run_id == first.result_run_id
        assert await first.result() == "hello carol, dave"
    events = await history_event_types(first)
    assert events[:2] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED"]
    assert events.count("WORKFLOW_EXECUTION_STARTED") == 1
    assert events.count("WORKFLOW_EXECUTION_SIGNALED") == 2


async def test_cancel_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[WaitForeverWorkflow]):
        handle = await client.start_workflow(WaitForeverWorkflow.run, id=unique("wf-cancel"), task_queue=tq)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc_info:
            await asyncio.wait_for(handle.result(), 20)
    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    events = await history_event_types(handle)
    assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in events
    assert events[-1] == "WORKFLOW_EXECUTION_CANCELED"


async def test_terminate_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[WaitForeverWorkflow]):
        handle = await client.start_workflow(WaitForeverWorkflow.run, id=unique("wf-terminate"), task_queue=tq)
        await handle.terminate(reason="enough of this")
        with pytest.raises(WorkflowFailureError) as exc_info:
            await asyncio.wait_for(handle.result(), 20)
    cause = exc_info.value.cause
    assert isinstance(cause, TerminatedError)
    assert cause.message == "enough of this"
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert (await history_event_types(handle))[-1] == "WORKFLOW_EXECUTION_TERMINATED"


async def test_workflow_failure(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[FailingWorkflow]):
        handle = await client.start_workflow(FailingWorkflow.run, id=unique("wf-fail"), task_queue=tq)
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
    cause = exc_info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "workflow broke"
    assert cause.type == "CustomFailure"
    assert list(cause.details) == ["some detail", 7]
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    assert (await history_event_types(handle))[-1] == "WORKFLOW_EXECUTION_FAILED"


async def test_start_same_id_while_running_is_rejected(client):
    tq, wf_id = unique("tq"), unique("wf-dup")
    async with new_worker(client, tq, workflows=[WaitForeverWorkflow]):
        handle = await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        with pytest.raises(WorkflowAlreadyStartedError) as exc_info:
            await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        # Needs ALREADY_EXISTS with WorkflowExecutionAlreadyStartedFailure details.
        assert exc_info.value.workflow_id == wf_id
        assert exc_info.value.run_id == handle.result_run_id
        await handle.terminate(reason="cleanup")
        # Once closed, the default id reuse policy allows a new run.
        again = await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        assert again.result_run_id != handle.result_run_id
        await again.terminate(reason="cleanup")


async def test_workflow_retry_policy(client):
    tq, wf_id = unique("tq"), unique("wf-retry")
    async with new_worker(client, tq, workflows=[FailFirstAttemptWorkflow]):
        handle = await client.start_workflow(
            FailFirstAttemptWorkflow.run,
            id=wf_id,
            task_queue=tq,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
        )
        assert await handle.result() == 2
    first_run = client.get_workflow_handle(wf_id, run_id=handle.result_run_id)
    last = (await history_events(first_run))[-1]
    assert event_name(last.event_type) == "WORKFLOW_EXECUTION_FAILED"
    new_run_id = last.workflow_execution_failed_event_attributes.new_execution_run_id
    assert new_run_id and new_run_id != handle.result_run_id
    latest = await client.get_workflow_handle(wf_id).describe()
    assert latest.run_id == new_run_id
    assert latest.status == WorkflowExecutionStatus.COMPLETED


async def test_describe_workflow(client):
    tq, wf_id = unique("tq"), unique("wf-describe")
    async with new_worker(client, tq, workflows=[SignalWorkflow]):
        handle = await client.start_workflow(SignalWorkflow.run, 1, id=wf_id, task_queue=tq)
        running = await handle.describe()
        assert running.status == WorkflowExecutionStatus.RUNNING
        assert running.workflow_type == "SignalWorkflow"
        assert running.id == wf_id
        assert running.run_id == handle.result_run_id
        assert running.task_queue == tq
        assert running.close_time is None
        await handle.signal(SignalWorkflow.greet, "erin")
        assert await handle.result() == "hello erin"
    done = await handle.describe()
    assert done.status == WorkflowExecutionStatus.COMPLETED
    assert done.close_time is not None and done.close_time >= done.start_time
    assert done.history_length == len(await history_events(handle))
