"""Activities: results, retries, heartbeats and cancellation."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

from helpers import FAST_RETRY, history_event_types, new_worker, unique

# Per-workflow-id observations made by activities (they run in this process).
ATTEMPTS: dict[str, list[int]] = defaultdict(list)
RESUMED_FROM: dict[str, list[object]] = defaultdict(list)
ACTIVITY_SAW_CANCEL: dict[str, bool] = {}


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def flaky(fail_times: int) -> str:
    info = activity.info()
    ATTEMPTS[info.workflow_id].append(info.attempt)
    if info.attempt <= fail_times:
        raise RuntimeError(f"transient failure on attempt {info.attempt}")
    return f"succeeded on attempt {info.attempt}"


@activity.defn
async def always_fails(kind: str) -> str:
    info = activity.info()
    ATTEMPTS[info.workflow_id].append(info.attempt)
    if kind == "non_retryable_flag":
        raise ApplicationError("fatal problem", type="FatalError", non_retryable=True)
    if kind == "non_retryable_type":
        raise ApplicationError("bad input", type="BadInput")
    raise ApplicationError(f"still broken on attempt {info.attempt}", type="Broken")


@activity.defn
async def resumable() -> str:
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else None
    RESUMED_FROM[info.workflow_id].append(start)
    if info.attempt == 1:
        activity.heartbeat(42)
        await asyncio.sleep(0.5)  # the first heartbeat is sent right away
        raise RuntimeError("crashed after recording progress")
    return f"attempt {info.attempt} resumed from {start}"


@activity.defn
async def heartbeat_until_cancelled() -> str:
    info = activity.info()
    try:
        while True:
            activity.heartbeat("tick")
            await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        ACTIVITY_SAW_CANCEL[info.workflow_id] = True
        raise


@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class FlakyWorkflow:
    @workflow.run
    async def run(self, fail_times: int) -> str:
        return await workflow.execute_activity(
            flaky, fail_times, start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY
        )


FAILURE_POLICIES = {
    "non_retryable_flag": RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5),
    "non_retryable_type": RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        maximum_attempts=5,
        non_retryable_error_types=["BadInput"],
    ),
    "exhausted": RetryPolicy(
        initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=3
    ),
}


@workflow.defn
class CatchActivityErrorWorkflow:
    """Runs an always-failing activity and reports how the failure surfaced."""

    @workflow.run
    async def run(self, kind: str) -> dict:
        try:
            await workflow.execute_activity(
                always_fails,
                kind,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=FAILURE_POLICIES[kind],
            )
        except ActivityError as err:
            cause = err.cause
            return {
                "error": type(err).__name__,
                "retry_state": err.retry_state.name if err.retry_state else None,
                "cause": type(cause).__name__,
                "cause_type": getattr(cause, "type", None),
                "message": cause.message if cause else None,
            }
        return {"error": None}


@workflow.defn
class ResumeWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            resumable,
            start_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=FAST_RETRY,
        )


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            heartbeat_until_cancelled,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(1)  # let the activity start and heartbeat
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return "activity cancelled"
            raise
        return "activity was not cancelled"


async def test_workflow_runs_activity_and_returns_result(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[GreetWorkflow], activities=[greet]):
        result = await client.execute_workflow(
            GreetWorkflow.run, "Chronicle", id=unique("wf-greet"), task_queue=tq
        )
    assert result == "Hello, Chronicle!"


async def test_activity_retries_until_success(client):
    tq, wf_id = unique("tq"), unique("wf-flaky")
    async with new_worker(client, tq, workflows=[FlakyWorkflow], activities=[flaky]):
        result = await client.execute_workflow(FlakyWorkflow.run, 2, id=wf_id, task_queue=tq)
    assert result == "succeeded on attempt 3"
    assert ATTEMPTS[wf_id] == [1, 2, 3]


@pytest.mark.parametrize(
    "kind, retry_state, cause_type, message, attempts",
    [
        ("non_retryable_flag", "NON_RETRYABLE_FAILURE", "FatalError", "fatal problem", [1]),
        ("non_retryable_type", "NON_RETRYABLE_FAILURE", "BadInput", "bad input", [1]),
        ("exhausted", "MAXIMUM_ATTEMPTS_REACHED", "Broken", "still broken on attempt 3", [1, 2, 3]),
    ],
)
async def test_activity_failure_surfaces_as_activity_error(
    client, kind, retry_state, cause_type, message, attempts
):
    tq, wf_id = unique("tq"), unique(f"wf-{kind}")
    async with new_worker(
        client, tq, workflows=[CatchActivityErrorWorkflow], activities=[always_fails]
    ):
        result = await client.execute_workflow(
            CatchActivityErrorWorkflow.run, kind, id=wf_id, task_queue=tq
        )
    assert result == {
        "error": "ActivityError",
        "retry_state": retry_state,
        "cause": "ApplicationError",
        "cause_type": cause_type,
        "message": message,
    }
    assert ATTEMPTS[wf_id] == attempts


async def test_heartbeat_details_visible_to_next_attempt(client):
    tq, wf_id = unique("tq"), unique("wf-resume")
    async with new_worker(client, tq, workflows=[ResumeWorkflow], activities=[resumable]):
        result = await client.execute_workflow(ResumeWorkflow.run, id=wf_id, task_queue=tq)
    assert result == "attempt 2 resumed from 42"
    assert RESUMED_FROM[wf_id] == [None, 42]


async def test_workflow_cancels_running_activity(client):
    tq, wf_id = unique("tq"), unique("wf-cancel-activity")
    async with new_worker(
        client, tq, workflows=[CancelActivityWorkflow], activities=[heartbeat_until_cancelled]
    ):
        handle = await client.start_workflow(CancelActivityWorkflow.run, id=wf_id, task_queue=tq)
        result = await handle.result()
    assert result == "activity cancelled"
    assert ACTIVITY_SAW_CANCEL.get(wf_id) is True
    events = await history_event_types(handle)
    assert "ACTIVITY_TASK_CANCEL_REQUESTED" in events
    assert "ACTIVITY_TASK_CANCELED" in events
    assert events.index("ACTIVITY_TASK_CANCEL_REQUESTED") < events.index("ACTIVITY_TASK_CANCELED")
