"""Workflow queries: running and closed workflows, reject conditions, handler errors, no worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import QueryRejectCondition
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from helpers import eventually, history_event_types, new_worker, unique


@workflow.defn
class CounterWorkflow:
    """Counts `bump` signals until `finish`; then completes (or fails, if asked to)."""

    def __init__(self) -> None:
        self._count = 0
        self._done = False

    @workflow.query
    def count(self) -> int:
        return self._count

    @workflow.query
    def describe_count(self, prefix: str) -> str:
        return f"{prefix}{self._count}"

    @workflow.query
    def broken(self) -> str:
        raise ApplicationError("query handler exploded")

    @workflow.signal
    def bump(self) -> None:
        self._count += 1

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.run
    async def run(self, fail: bool) -> int:
        await workflow.wait_condition(lambda: self._done)
        if fail:
            raise ApplicationError("failing on purpose", non_retryable=True)
        return self._count


async def _start_counter(client, tq: str, *, fail: bool = False):
    return await client.start_workflow(CounterWorkflow.run, fail, id=unique("wf-query"), task_queue=tq)


async def test_query_running_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        handle = await _start_counter(client, tq)
        assert await handle.query(CounterWorkflow.count) == 0
        await handle.signal(CounterWorkflow.bump)
        await handle.signal(CounterWorkflow.bump)
        assert await handle.query(CounterWorkflow.count) == 2
        assert await handle.query(CounterWorkflow.describe_count, "n=") == "n=2"
        # Queries are read-only: they add nothing to the history.
        before = await history_event_types(handle)
        await handle.query(CounterWorkflow.count)
        assert await history_event_types(handle) == before
        await handle.signal(CounterWorkflow.finish)
        assert await handle.result() == 2


async def test_query_completed_workflow_is_answered_by_a_fresh_worker(client):
    """A closed workflow has no cached state anywhere: the server hands a worker the full
    history and the worker replays it to answer."""
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        handle = await _start_counter(client, tq)
        for _ in range(3):
            await handle.signal(CounterWorkflow.bump)
        await handle.signal(CounterWorkflow.finish)
        assert await handle.result() == 3
    history = await history_event_types(handle)
    assert history[-1] == "WORKFLOW_EXECUTION_COMPLETED"

    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        assert await handle.query(CounterWorkflow.count) == 3
        assert await handle.query(CounterWorkflow.describe_count, "total ") == "total 3"
        # A handle pinned to the run answers the same.
        pinned = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        assert await pinned.query(CounterWorkflow.count) == 3
    assert await history_event_types(handle) == history


async def test_query_reject_condition_not_open(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        handle = await _start_counter(client, tq)
        await handle.signal(CounterWorkflow.bump)
        # Open workflow: the condition does not apply.
        assert await handle.query(CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_OPEN) == 1
        await handle.signal(CounterWorkflow.finish)
        await handle.result()
        with pytest.raises(WorkflowQueryRejectedError) as exc_info:
            await handle.query(CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_OPEN)
        assert exc_info.value.status == WorkflowExecutionStatus.COMPLETED
        # Without a reject condition the same query is answered.
        assert await handle.query(CounterWorkflow.count) == 1


async def test_query_reject_condition_not_completed_cleanly(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        completed = await _start_counter(client, tq)
        await completed.signal(CounterWorkflow.bump)
        await completed.signal(CounterWorkflow.finish)
        await completed.result()
        # Completed cleanly: answered.
        assert await completed.query(
            CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY
        ) == 1

        terminated = await _start_counter(client, tq)
        await terminated.signal(CounterWorkflow.bump)
        await terminated.signal(CounterWorkflow.bump)
        await eventually(lambda: terminated.query(CounterWorkflow.count), lambda n: n == 2, what="2 bumps", interval=0.05)
        await terminated.terminate(reason="stop")
        with pytest.raises(WorkflowQueryRejectedError) as exc_info:
            await terminated.query(CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY)
        assert exc_info.value.status == WorkflowExecutionStatus.TERMINATED
        # NOT_OPEN rejects it too; no condition answers from the replayed history.
        with pytest.raises(WorkflowQueryRejectedError):
            await terminated.query(CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_OPEN)
        assert await terminated.query(CounterWorkflow.count) == 2

        failed = await _start_counter(client, tq, fail=True)
        await failed.signal(CounterWorkflow.finish)
        with pytest.raises(WorkflowFailureError):
            await failed.result()
        with pytest.raises(WorkflowQueryRejectedError) as exc_info:
            await failed.query(CounterWorkflow.count, reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY)
        assert exc_info.value.status == WorkflowExecutionStatus.FAILED


async def test_query_handler_errors(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        handle = await _start_counter(client, tq)
        with pytest.raises(WorkflowQueryFailedError) as exc_info:
            await handle.query(CounterWorkflow.broken)
        assert "query handler exploded" in exc_info.value.message
        with pytest.raises(WorkflowQueryFailedError) as exc_info:
            await handle.query("no_such_query")
        assert "no_such_query" in exc_info.value.message
        # A failed query does not hurt the workflow.
        await handle.signal(CounterWorkflow.finish)
        assert await handle.result() == 0
        assert "WORKFLOW_TASK_FAILED" not in await history_event_types(handle)


# The SDK's own deadline fires while the server is still waiting for a worker to answer
# (the reference answers nothing within the deadline). Accept the server's own deadline
# error too, in case the server gives up first.
NO_ANSWER = (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)


async def test_query_without_worker_times_out(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CounterWorkflow]):
        handle = await _start_counter(client, tq)
        await handle.signal(CounterWorkflow.bump)
        assert await handle.query(CounterWorkflow.count) == 1
    # The worker is gone: nobody can answer.
    began = time.monotonic()
    with pytest.raises(RPCError) as exc_info:
        await handle.query(CounterWorkflow.count, rpc_timeout=timedelta(seconds=1))
    assert exc_info.value.status in NO_ANSWER, exc_info.value
    assert time.monotonic() - began >= 0.5  # it waited for a worker, it was not refused
    # The workflow itself is untouched.
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate(reason="cleanup")


async def test_query_on_never_polled_task_queue_times_out(client):
    """No worker ever polled the task queue, so the first workflow task never ran."""
    handle = await client.start_workflow(
        CounterWorkflow.run, False, id=unique("wf-query"), task_queue=unique("tq-nobody")
    )
    with pytest.raises(RPCError) as exc_info:
        await handle.query(CounterWorkflow.count, rpc_timeout=timedelta(seconds=1))
    assert exc_info.value.status in NO_ANSWER, exc_info.value
    assert await history_event_types(handle) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    await handle.terminate(reason="cleanup")
