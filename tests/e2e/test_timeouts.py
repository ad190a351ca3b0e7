"""Activity timeouts of every kind, and workflow execution/run timeouts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import RetryState
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

from helpers import NO_RETRY, event_name, history_events, new_worker, unique


@activity.defn
async def sleepy(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke up"


@activity.defn
async def heartbeat_then_stall(seconds: float) -> str:
    activity.heartbeat("last-beat")
    await asyncio.sleep(seconds)
    return "stalled"


@workflow.defn
class ActivityTimeoutWorkflow:
    """Provokes one kind of activity timeout and reports what surfaced."""

    @workflow.run
    async def run(self, kind: str) -> dict:
        one_sec = timedelta(seconds=1)
        long = timedelta(seconds=10)
        try:
            if kind == "start_to_close":
                await workflow.execute_activity(
                    sleepy, 5, start_to_close_timeout=one_sec, retry_policy=NO_RETRY
                )
            elif kind == "schedule_to_close":
                await workflow.execute_activity(
                    sleepy, 5, schedule_to_close_timeout=one_sec, retry_policy=NO_RETRY
                )
            elif kind == "schedule_to_close_never_started":
                await workflow.execute_activity(
                    sleepy,
                    0,
                    task_queue=workflow.info().task_queue + "-nobody-polls",
                    schedule_to_close_timeout=one_sec,
                )
            elif kind == "schedule_to_start":
                await workflow.execute_activity(
                    sleepy,
                    0,
                    task_queue=workflow.info().task_queue + "-nobody-polls",
                    schedule_to_start_timeout=one_sec,
                    start_to_close_timeout=long,
                )
            elif kind == "heartbeat":
                await workflow.execute_activity(
                    heartbeat_then_stall,
                    5,
                    start_to_close_timeout=long,
                    heartbeat_timeout=one_sec,
                    retry_policy=NO_RETRY,
                )
            else:
                raise ValueError(kind)
        except ActivityError as err:
            cause = err.cause
            return {
                "error": type(err).__name__,
                "retry_state": err.retry_state.name if err.retry_state else None,
                "cause": type(cause).__name__,
                "timeout_type": cause.type.name if isinstance(cause, TimeoutError) else None,
                "message": cause.message if cause else None,
                "heartbeat_details": list(getattr(cause, "last_heartbeat_details", [])),
            }
        return {"error": None}


@workflow.defn
class SleepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "slept"


# Expectations as observed on the reference server:
# - a start-to-close/heartbeat timeout ending the only allowed attempt reports
#   retry_state MAXIMUM_ATTEMPTS_REACHED; schedule-to-* timeouts report TIMEOUT.
# - schedule-to-start defaults to schedule-to-close, so an activity that is
#   never picked up fails with a SCHEDULE_TO_START timeout.
# - messages: "activity StartToClose timeout", "activity ScheduleToStart
#   timeout", "activity Heartbeat timeout"; for schedule-to-close (start-to-close
#   is capped to it) "Not enough time to schedule next retry before activity
#   ScheduleToClose timeout, giving up retrying". Only the kind is asserted.
@pytest.mark.parametrize(
    "kind, timeout_type, retry_state, message_part, heartbeat_details",
    [
        ("start_to_close", "START_TO_CLOSE", "MAXIMUM_ATTEMPTS_REACHED", "StartToClose", []),
        ("schedule_to_close", "SCHEDULE_TO_CLOSE", "TIMEOUT", "ScheduleToClose", []),
        ("schedule_to_start", "SCHEDULE_TO_START", "TIMEOUT", "ScheduleToStart", []),
        ("schedule_to_close_never_started", "SCHEDULE_TO_START", "TIMEOUT", "ScheduleToStart", []),
        ("heartbeat", "HEARTBEAT", "MAXIMUM_ATTEMPTS_REACHED", "Heartbeat", ["last-beat"]),
    ],
)
async def test_activity_timeout(
    client, kind, timeout_type, retry_state, message_part, heartbeat_details
):
    tq = unique("tq")
    async with new_worker(
        client, tq, workflows=[ActivityTimeoutWorkflow], activities=[sleepy, heartbeat_then_stall]
    ):
        result = await client.execute_workflow(
            ActivityTimeoutWorkflow.run, kind, id=unique(f"wf-{kind}"), task_queue=tq
        )
    assert message_part in result.pop("message")
    assert result == {
        "error": "ActivityError",
        "retry_state": retry_state,
        "cause": "TimeoutError",
        "timeout_type": timeout_type,
        "heartbeat_details": heartbeat_details,
    }


# The reference records retry_state TIMEOUT when the whole execution timed
# out, RETRY_POLICY_NOT_SET when only the run did (no retry policy given).
@pytest.mark.parametrize(
    "which, retry_state",
    [
        ("execution_timeout", RetryState.RETRY_STATE_TIMEOUT),
        ("run_timeout", RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET),
    ],
)
async def test_workflow_timeout(client, which, retry_state):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[SleepWorkflow]):
        handle = await client.start_workflow(
            SleepWorkflow.run,
            30,
            id=unique(f"wf-{which}"),
            task_queue=tq,
            **{which: timedelta(seconds=1)},
        )
        with pytest.raises(WorkflowFailureError) as exc_info:
            await asyncio.wait_for(handle.result(), 20)
    cause = exc_info.value.cause
    assert isinstance(cause, TimeoutError)
    assert cause.type == TimeoutType.START_TO_CLOSE
    assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
    last = (await history_events(handle))[-1]
    assert event_name(last.event_type) == "WORKFLOW_EXECUTION_TIMED_OUT"
    assert last.workflow_execution_timed_out_event_attributes.retry_state == retry_state
