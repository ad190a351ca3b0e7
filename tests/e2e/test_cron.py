"""Cron schedules and workflow retries: both close a run and start the next one under the
same workflow id after a backoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewInitiator, RetryState
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from helpers import event_name, eventually, history_events, new_worker, unique

CRON = "@every 1s"


@workflow.defn
class CronWorkflow:
    @workflow.run
    async def run(self) -> str:
        previous = workflow.get_last_completion_result(str) if workflow.has_last_completion_result() else None
        return f"run {workflow.info().run_id} after {previous}"


@workflow.defn
class FailUntilAttemptWorkflow:
    @workflow.run
    async def run(self, succeed_on: int) -> int:
        attempt = workflow.info().attempt
        if attempt < succeed_on:
            raise ApplicationError(f"attempt {attempt} fails")
        return attempt


async def test_cron_schedule_chains_runs(client):
    tq, wf_id = unique("tq"), unique("wf-cron")
    async with new_worker(client, tq, workflows=[CronWorkflow]):
        handle = await client.start_workflow(CronWorkflow.run, id=wf_id, task_queue=tq, cron_schedule=CRON)
        first_run_id = handle.result_run_id

        # The first run waits for the schedule too: its first workflow task has a backoff.
        first = client.get_workflow_handle(wf_id, run_id=first_run_id)
        events = await history_events(first)
        started = events[0].workflow_execution_started_event_attributes
        assert started.cron_schedule == CRON
        assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        assert started.first_workflow_task_backoff.ToTimedelta() > timedelta(0)
        assert started.first_execution_run_id == first_run_id

        # Wait for the schedule to move past the first two runs.
        async def run_ids() -> list[str]:
            ids, run_id = [first_run_id], first_run_id
            while True:
                last = (await history_events(client.get_workflow_handle(wf_id, run_id=run_id)))[-1]
                if event_name(last.event_type) != "WORKFLOW_EXECUTION_COMPLETED":
                    return ids
                run_id = last.workflow_execution_completed_event_attributes.new_execution_run_id
                ids.append(run_id)

        chain = await eventually(run_ids, lambda ids: len(ids) >= 3, what="two completed cron runs", timeout=20)

        # A cron run closes as COMPLETED (not CONTINUED_AS_NEW), naming the next run.
        results = []
        for index in range(2):
            run = client.get_workflow_handle(wf_id, run_id=chain[index])
            events = await history_events(run)
            assert [event_name(e.event_type) for e in events] == [
                "WORKFLOW_EXECUTION_STARTED",
                "WORKFLOW_TASK_SCHEDULED",
                "WORKFLOW_TASK_STARTED",
                "WORKFLOW_TASK_COMPLETED",
                "WORKFLOW_EXECUTION_COMPLETED",
            ]
            completed = events[-1].workflow_execution_completed_event_attributes
            assert completed.new_execution_run_id == chain[index + 1]
            results.append(completed.result.payloads[0].data.decode())
            assert (await run.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert results[0] == f'"run {chain[0]} after None"'
        assert results[1] == f'"run {chain[1]} after run {chain[0]} after None"'

        # The next run is linked to the previous one and carries its result.
        second = (await history_events(client.get_workflow_handle(wf_id, run_id=chain[1])))[0]
        attrs = second.workflow_execution_started_event_attributes
        assert attrs.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        assert attrs.continued_execution_run_id == chain[0]
        assert attrs.first_execution_run_id == first_run_id
        assert attrs.cron_schedule == CRON
        assert attrs.first_workflow_task_backoff.ToTimedelta() > timedelta(0)
        assert attrs.last_completion_result.payloads[0].data.decode() == results[0]

        # Terminating the workflow id stops the schedule.
        latest = client.get_workflow_handle(wf_id)
        await latest.terminate(reason="stop the cron")
        desc = await latest.describe()
        assert desc.status == WorkflowExecutionStatus.TERMINATED
        assert desc.run_id not in chain[:2]
        last = (await history_events(client.get_workflow_handle(wf_id, run_id=desc.run_id)))[-1]
        assert event_name(last.event_type) == "WORKFLOW_EXECUTION_TERMINATED"
        assert last.workflow_execution_terminated_event_attributes.reason == "stop the cron"


async def test_workflow_retry_chains_attempts(client):
    tq, wf_id = unique("tq"), unique("wf-retry-chain")
    policy = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=5)
    async with new_worker(client, tq, workflows=[FailUntilAttemptWorkflow]):
        handle = await client.start_workflow(
            FailUntilAttemptWorkflow.run, 3, id=wf_id, task_queue=tq, retry_policy=policy
        )
        assert await handle.result() == 3

    # Walk the chain from the first run.
    runs, run_id = [], handle.result_run_id
    while run_id:
        events = await history_events(client.get_workflow_handle(wf_id, run_id=run_id))
        runs.append((run_id, events))
        last = events[-1]
        run_id = (
            last.workflow_execution_failed_event_attributes.new_execution_run_id
            if event_name(last.event_type) == "WORKFLOW_EXECUTION_FAILED"
            else None
        )
    assert len(runs) == 3
    for attempt, (run_id, events) in enumerate(runs, start=1):
        started = events[0].workflow_execution_started_event_attributes
        assert started.attempt == attempt
        assert started.first_execution_run_id == handle.result_run_id
        assert started.retry_policy.maximum_attempts == 5
        names = [event_name(e.event_type) for e in events]
        if attempt == 1:
            assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_UNSPECIFIED
            assert started.continued_execution_run_id == ""
            assert started.first_workflow_task_backoff.ToTimedelta() == timedelta(0)
        else:
            assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY
            assert started.continued_execution_run_id == runs[attempt - 2][0]
            # Retries wait for their backoff before the first workflow task.
            assert started.first_workflow_task_backoff.ToTimedelta() > timedelta(0)
            # The previous failure travels with the retry.
            assert started.continued_failure.message == f"attempt {attempt - 1} fails"
        if attempt < 3:
            assert names[-1] == "WORKFLOW_EXECUTION_FAILED"
            failed = events[-1].workflow_execution_failed_event_attributes
            assert failed.retry_state == RetryState.RETRY_STATE_IN_PROGRESS
            assert failed.failure.message == f"attempt {attempt} fails"
            assert (await client.get_workflow_handle(wf_id, run_id=run_id).describe()).status == (
                WorkflowExecutionStatus.FAILED
            )
        else:
            assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_workflow_retry_gives_up_after_maximum_attempts(client):
    tq, wf_id = unique("tq"), unique("wf-retry-exhausted")
    policy = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=2)
    async with new_worker(client, tq, workflows=[FailUntilAttemptWorkflow]):
        handle = await client.start_workflow(
            FailUntilAttemptWorkflow.run, 99, id=wf_id, task_queue=tq, retry_policy=policy
        )
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
    cause = exc_info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "attempt 2 fails"
    latest = await client.get_workflow_handle(wf_id).describe()
    assert latest.status == WorkflowExecutionStatus.FAILED
    events = await history_events(client.get_workflow_handle(wf_id, run_id=latest.run_id))
    assert events[0].workflow_execution_started_event_attributes.attempt == 2
    failed = events[-1].workflow_execution_failed_event_attributes
    assert failed.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert failed.new_execution_run_id == ""
