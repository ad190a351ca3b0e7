"""Operator control of running activities: PauseActivity, UnpauseActivity, ResetActivity and
UpdateActivityOptions (WorkflowService RPCs). What the worker learns through its heartbeats (and
what the Python SDK makes of that: a cancel with `activity.cancellation_details()`), what
describe reports of the pending activity, and how attempts and options change."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio import activity, workflow
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.command.v1 import Command, ScheduleActivityTaskCommandAttributes
from temporalio.api.common.v1 import ActivityType, WorkflowExecution, WorkflowType
from temporalio.api.common.v1 import RetryPolicy as RetryPolicyProto
from temporalio.api.enums.v1 import CommandType, PendingActivityState, TimeoutType
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    PauseActivityRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RecordActivityTaskHeartbeatRequest,
    RespondActivityTaskFailedRequest,
    RespondWorkflowTaskCompletedRequest,
    ResetActivityRequest,
    StartWorkflowExecutionRequest,
    UnpauseActivityRequest,
    UpdateActivityOptionsRequest,
)
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from helpers import event_name, events_named, eventually, history_events, new_worker, unique

NS = "default"
OPERATOR = "e2e-operator"
EMPTY_POLL_TIMEOUT = timedelta(seconds=3)  # the reference refuses long polls under 2 s
NO_SUCH_ACTIVITY = "Can't find pending activity with such ID. Invalid activityID or activity already completed"

STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
PAUSED = PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
PAUSE_REQUESTED = PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED

# The Python SDK fails an attempt whose activity let the pause/reset cancel escape with these.
SDK_PAUSE_FAILURE = ("ActivityPause", "Unhandled activity cancel error produced by activity pause")
SDK_RESET_FAILURE = ("ActivityReset", "Unhandled activity cancel error produced by activity reset")

# Worker-side records, per test key (the workers run in this process).
ATTEMPTS: dict[str, list[int]] = defaultdict(list)
CANCELLATIONS: dict[str, list] = defaultdict(list)
INFOS: dict[str, list] = defaultdict(list)
RELEASED: set[str] = set()
FAIL_FIRST: dict[str, int] = {}  # key -> how many of its first executions fail at once


@activity.defn
async def heartbeating(key: str) -> str:
    """Heartbeats until RELEASED holds `key`; records its attempts and how it was cancelled."""
    info = activity.info()
    ATTEMPTS[key].append(info.attempt)
    INFOS[key].append(info)
    if len(ATTEMPTS[key]) <= FAIL_FIRST.get(key, 0):
        raise ApplicationError(f"attempt {info.attempt} fails on purpose")
    try:
        while key not in RELEASED:
            activity.heartbeat(info.attempt)
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        CANCELLATIONS[key].append(activity.cancellation_details())
        raise
    return f"finished on attempt {info.attempt}"


@workflow.defn
class RunsOneActivity:
    @workflow.run
    async def run(self, key: str, activity_queue: str) -> str:
        return await workflow.execute_activity(
            heartbeating,
            key,
            activity_id="the-activity",
            task_queue=activity_queue or None,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0),
        )


def _worker(client: Client, tq: str):
    # Heartbeats reach the server within 100 ms instead of the SDK's default throttle of many seconds.
    return new_worker(
        client, tq, workflows=[RunsOneActivity], activities=[heartbeating],
        default_heartbeat_throttle_interval=timedelta(milliseconds=100),
        max_heartbeat_throttle_interval=timedelta(milliseconds=100),
    )


async def _pending(client: Client, wf_id: str, activity_id: str = "the-activity"):
    desc = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=NS, execution=WorkflowExecution(workflow_id=wf_id))
    )
    found = [p for p in desc.pending_activities if p.activity_id == activity_id]
    return found[0] if found else None


async def _wait_pending(client: Client, wf_id: str, ok, what: str, activity_id: str = "the-activity"):
    return await eventually(
        lambda: _pending(client, wf_id, activity_id),
        lambda p: p is not None and ok(p),
        what=what,
        timeout=15,
        interval=0.05,
    )


async def _wait_for(predicate, what: str, timeout: float = 15):
    async def check():
        return predicate()
    await eventually(check, bool, what=what, timeout=timeout, interval=0.02)


def _execution(wf_id: str) -> WorkflowExecution:
    return WorkflowExecution(workflow_id=wf_id)


# -- raw RPCs: a hand-driven worker ------------------------------------------


async def _schedule_by_hand(client: Client, tq: str, wf_id: str) -> None:
    """Starts a workflow and completes its first task scheduling activity "a1" (10 attempts)."""
    ws = client.workflow_service
    await ws.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=NS, workflow_id=wf_id, workflow_type=WorkflowType(name="HandDriven"),
            task_queue=TaskQueue(name=tq), identity="starter", request_id=str(uuid.uuid4()),
        )
    )
    wft = await ws.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity="hand-worker"),
        timeout=timedelta(seconds=20),
    )
    attrs = ScheduleActivityTaskCommandAttributes(
        activity_id="a1", activity_type=ActivityType(name="HandActivity"), task_queue=TaskQueue(name=tq),
        retry_policy=RetryPolicyProto(maximum_attempts=10),
    )
    attrs.start_to_close_timeout.FromTimedelta(timedelta(seconds=30))
    attrs.retry_policy.initial_interval.FromTimedelta(timedelta(milliseconds=100))
    await ws.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=NS, task_token=wft.task_token, identity="hand-worker",
            commands=[Command(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
                              schedule_activity_task_command_attributes=attrs)],
        )
    )


async def _poll_activity(client: Client, tq: str, timeout=timedelta(seconds=20)):
    return await client.workflow_service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity="activity-worker"),
        timeout=timeout,
    )


async def test_pause_is_reported_to_heartbeat_and_describe(client):
    tq, wf_id = unique("tq-pause-raw"), unique("wf-pause-raw")
    ws = client.workflow_service
    await _schedule_by_hand(client, tq, wf_id)
    task = await _poll_activity(client, tq)
    assert (task.activity_id, task.attempt) == ("a1", 1)

    resp = await ws.pause_activity(
        PauseActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1", reason="looking into it")
    )
    assert resp.ByteSize() == 0

    # The running attempt learns of it from its next heartbeat; it is not a cancel request.
    beat = await ws.record_activity_task_heartbeat(
        RecordActivityTaskHeartbeatRequest(namespace=NS, task_token=task.task_token, identity="activity-worker")
    )
    assert beat.activity_paused
    assert not beat.cancel_requested
    assert not beat.activity_reset

    pending = await _pending(client, wf_id, "a1")
    assert pending.state == PAUSE_REQUESTED  # paused, but the attempt is still out with the worker
    assert pending.paused
    assert pending.attempt == 1
    assert pending.pause_info.HasField("pause_time")
    assert pending.pause_info.manual.identity == OPERATOR
    assert pending.pause_info.manual.reason == "looking into it"
    assert pending.last_worker_identity == "activity-worker"

    # Pausing again is accepted and changes nothing.
    await ws.pause_activity(PauseActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1"))
    assert (await _pending(client, wf_id, "a1")).pause_info.manual.reason == "looking into it"

    # The attempt gives up; the failure counts, but no retry is dispatched while paused.
    await ws.respond_activity_task_failed(
        RespondActivityTaskFailedRequest(
            namespace=NS, task_token=task.task_token, identity="activity-worker",
            failure=Failure(message="gave up", application_failure_info=ApplicationFailureInfo(type="Paused")),
        )
    )
    pending = await _pending(client, wf_id, "a1")
    assert pending.state == PAUSED
    assert pending.paused
    assert pending.attempt == 2
    assert pending.last_failure.message == "gave up"
    assert pending.pause_info.manual.reason == "looking into it"
    idle = await _poll_activity(client, tq, EMPTY_POLL_TIMEOUT)
    assert not idle.task_token, "a paused activity was dispatched"

    # Unpausing schedules the next attempt at once.
    resp = await ws.unpause_activity(
        UnpauseActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1")
    )
    assert resp.ByteSize() == 0
    pending = await _pending(client, wf_id, "a1")
    assert pending.state == SCHEDULED
    assert not pending.paused
    assert not pending.HasField("pause_info")
    assert pending.attempt == 2
    task = await _poll_activity(client, tq)
    assert (task.activity_id, task.attempt) == ("a1", 2)
    # Unpausing what is not paused is accepted too.
    await ws.unpause_activity(UnpauseActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1"))

    # None of this is written to the history.
    names = [event_name(e.event_type) for e in await history_events(client.get_workflow_handle(wf_id))]
    assert names[-1] == "ACTIVITY_TASK_SCHEDULED"
    assert not any("PAUSE" in n for n in names)

    # Unknown activity / unknown workflow.
    for call, request in (
        (ws.pause_activity, PauseActivityRequest),
        (ws.unpause_activity, UnpauseActivityRequest),
        (ws.reset_activity, ResetActivityRequest),
    ):
        with pytest.raises(RPCError) as exc_info:
            await call(request(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="no-such-activity"))
        assert exc_info.value.status == RPCStatusCode.NOT_FOUND
        assert exc_info.value.message == NO_SUCH_ACTIVITY
    missing = unique("wf-missing")
    with pytest.raises(RPCError) as exc_info:
        await ws.pause_activity(PauseActivityRequest(namespace=NS, execution=_execution(missing), identity=OPERATOR, id="a1"))
    assert exc_info.value.status == RPCStatusCode.NOT_FOUND
    assert exc_info.value.message == f"workflow not found for ID: {missing}"
    await client.get_workflow_handle(wf_id).terminate()


async def test_reset_of_paused_activity_restarts_attempts(client):
    """By hand: three failed attempts, paused; reset with keep_paused puts the attempt back to 1
    and leaves it paused; a plain reset also unpauses and dispatches attempt 1."""
    tq, wf_id = unique("tq-reset-raw"), unique("wf-reset-raw")
    ws = client.workflow_service
    await _schedule_by_hand(client, tq, wf_id)
    for attempt in (1, 2, 3):
        task = await _poll_activity(client, tq)
        assert task.attempt == attempt
        if attempt == 3:
            await ws.pause_activity(PauseActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1"))
        await ws.respond_activity_task_failed(
            RespondActivityTaskFailedRequest(
                namespace=NS, task_token=task.task_token, identity="activity-worker",
                failure=Failure(message=f"fail {attempt}", application_failure_info=ApplicationFailureInfo(type="X")),
            )
        )
    pending = await _pending(client, wf_id, "a1")
    assert (pending.state, pending.attempt, pending.paused) == (PAUSED, 4, True)

    resp = await ws.reset_activity(
        ResetActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1", keep_paused=True)
    )
    assert resp.ByteSize() == 0
    pending = await _pending(client, wf_id, "a1")
    assert (pending.state, pending.attempt, pending.paused) == (PAUSED, 1, True)

    await ws.reset_activity(ResetActivityRequest(namespace=NS, execution=_execution(wf_id), identity=OPERATOR, id="a1"))
    pending = await _pending(client, wf_id, "a1")
    assert (pending.state, pending.attempt, pending.paused) == (SCHEDULED, 1, False)
    assert not pending.HasField("last_failure")  # a reset forgets the earlier attempts
    assert not pending.HasField("pause_info")
    task = await _poll_activity(client, tq)
    assert task.attempt == 1
    await client.get_workflow_handle(wf_id).terminate()


# -- through the Python SDK --------------------------------------------------


async def test_sdk_activity_is_cancelled_as_paused_and_resumes_on_unpause(client):
    tq, key = unique("tq-pause-sdk"), unique("wf-pause-sdk")
    async with _worker(client, tq):
        handle = await client.start_workflow(RunsOneActivity.run, args=[key, ""], id=key, task_queue=tq)
        await _wait_pending(client, key, lambda p: p.state == STARTED and p.HasField("last_heartbeat_time"),
                            "the activity to heartbeat")

        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity",
                                 reason="maintenance")
        )
        # The heartbeat's activity_paused becomes a cancel of the activity, marked as a pause.
        await _wait_for(lambda: CANCELLATIONS[key], "the activity to be cancelled")
        (details,) = CANCELLATIONS[key]
        assert details.paused
        assert not (details.cancel_requested or details.reset or details.not_found or details.timed_out
                    or details.worker_shutdown)

        # The SDK fails the attempt; the activity stays paused with the next attempt waiting.
        pending = await _wait_pending(client, key, lambda p: p.state == PAUSED, "the activity to be PAUSED")
        assert pending.paused
        assert pending.attempt == 2
        assert (pending.last_failure.application_failure_info.type, pending.last_failure.message) == SDK_PAUSE_FAILURE
        assert pending.pause_info.manual.identity == OPERATOR
        assert pending.pause_info.manual.reason == "maintenance"
        assert ATTEMPTS[key] == [1]  # nothing ran while paused

        RELEASED.add(key)
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity")
        )
        assert await handle.result() == "finished on attempt 2"
    assert ATTEMPTS[key] == [1, 2]

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert "ACTIVITY_TASK_FAILED" not in names
    (started,) = events_named(events, "ACTIVITY_TASK_STARTED")
    assert started.activity_task_started_event_attributes.attempt == 2
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_sdk_reset_of_running_activity_and_of_paused_activity(client):
    tq = unique("tq-reset-sdk")
    async with _worker(client, tq):
        # Reset while attempt 1 runs: the heartbeat reports activity_reset, the SDK cancels the
        # activity marked as reset and fails the attempt; the retry follows.
        key = unique("wf-reset-running")
        handle = await client.start_workflow(RunsOneActivity.run, args=[key, ""], id=key, task_queue=tq)
        await _wait_pending(client, key, lambda p: p.state == STARTED and p.HasField("last_heartbeat_time"),
                            "the activity to heartbeat")
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity")
        )
        await _wait_for(lambda: CANCELLATIONS[key], "the activity to be cancelled")
        (details,) = CANCELLATIONS[key]
        assert details.reset
        assert not (details.paused or details.cancel_requested or details.not_found)
        RELEASED.add(key)
        assert await handle.result() == "finished on attempt 2"
        (started,) = events_named(await history_events(handle), "ACTIVITY_TASK_STARTED")
        last_failure = started.activity_task_started_event_attributes.last_failure
        assert (last_failure.application_failure_info.type, last_failure.message) == SDK_RESET_FAILURE

        # Attempts 1 and 2 fail, attempt 3 is paused; a reset brings it back as attempt 1.
        key = unique("wf-reset-paused")
        FAIL_FIRST[key] = 2
        handle = await client.start_workflow(RunsOneActivity.run, args=[key, ""], id=key, task_queue=tq)
        await _wait_pending(client, key, lambda p: p.attempt == 3 and p.state == STARTED
                            and p.HasField("last_heartbeat_time"), "attempt 3 to heartbeat")
        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity")
        )
        pending = await _wait_pending(client, key, lambda p: p.state == PAUSED, "the activity to be PAUSED")
        assert pending.attempt == 4
        RELEASED.add(key)
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity")
        )
        assert await handle.result() == "finished on attempt 1"
    assert ATTEMPTS[key] == [1, 2, 3, 1]
    (started,) = events_named(await history_events(handle), "ACTIVITY_TASK_STARTED")
    assert started.activity_task_started_event_attributes.attempt == 1


async def test_update_activity_options(client):
    """The activity waits on a queue no worker polls; UpdateActivityOptions moves it to the
    worker's queue and shortens its start-to-close timeout, and the server enforces the new
    timeout on the attempt the worker runs (the activity task itself still carries the timeouts
    of the scheduled event; the retry policy it carries is the updated one)."""
    tq, key = unique("tq-options"), unique("wf-options")
    nowhere = unique("tq-nowhere")
    ws = client.workflow_service
    async with _worker(client, tq):
        handle = await client.start_workflow(RunsOneActivity.run, args=[key, nowhere], id=key, task_queue=tq)
        pending = await _wait_pending(client, key, lambda p: p.state == SCHEDULED, "the activity to be scheduled")
        options = pending.activity_options
        assert options.task_queue.name == nowhere
        assert options.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)
        assert options.heartbeat_timeout.ToTimedelta() == timedelta(seconds=10)
        assert options.retry_policy.maximum_attempts == 0

        # Without a mask nothing is updated.
        with pytest.raises(RPCError) as exc_info:
            await ws.update_activity_options(
                UpdateActivityOptionsRequest(namespace=NS, execution=_execution(key), identity=OPERATOR,
                                             id="the-activity", activity_options=ActivityOptions())
            )
        assert exc_info.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert exc_info.value.message == "UpdateMask is not provided"

        new = ActivityOptions(task_queue=TaskQueue(name=tq))
        new.start_to_close_timeout.FromTimedelta(timedelta(seconds=1))
        new.heartbeat_timeout.FromTimedelta(timedelta(seconds=4))
        new.retry_policy.maximum_attempts = 3
        new.retry_policy.initial_interval.FromTimedelta(timedelta(seconds=99))  # not in the mask: ignored
        mask = FieldMask(paths=["task_queue.name", "start_to_close_timeout", "heartbeat_timeout",
                                "retry_policy.maximum_attempts"])
        with pytest.raises(RPCError) as exc_info:
            await ws.update_activity_options(
                UpdateActivityOptionsRequest(namespace=NS, execution=_execution(key), identity=OPERATOR,
                                             id="no-such-activity", activity_options=new, update_mask=mask)
            )
        assert exc_info.value.status == RPCStatusCode.NOT_FOUND
        assert exc_info.value.message == NO_SUCH_ACTIVITY

        resp = await ws.update_activity_options(
            UpdateActivityOptionsRequest(namespace=NS, execution=_execution(key), identity=OPERATOR,
                                         id="the-activity", activity_options=new, update_mask=mask)
        )
        # The response holds the activity's options after the update, masked fields changed only.
        updated = resp.activity_options
        assert updated.task_queue.name == tq
        assert updated.start_to_close_timeout.ToTimedelta() == timedelta(seconds=1)
        # A heartbeat timeout longer than start-to-close is cut down to it, as at scheduling.
        assert updated.heartbeat_timeout.ToTimedelta() == timedelta(seconds=1)
        assert updated.retry_policy.maximum_attempts == 3
        assert updated.retry_policy.initial_interval.ToTimedelta() == timedelta(milliseconds=100)
        assert updated.retry_policy.backoff_coefficient == 1.0

        # Attempt 1 runs on the worker's queue and never finishes: the 1 s timeout ends it.
        await _wait_for(lambda: len(ATTEMPTS[key]) >= 2, "attempt 1 to time out and attempt 2 to start")
        assert ATTEMPTS[key] == [1, 2]
        pending = await _pending(client, key)
        assert pending.attempt == 2
        assert pending.maximum_attempts == 3
        assert pending.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
        RELEASED.add(key)
        assert await handle.result() == "finished on attempt 2"

    first, second = INFOS[key]
    assert first.task_queue == second.task_queue == tq
    assert first.retry_policy.maximum_attempts == 3
    # The scheduled event keeps the options the workflow asked for.
    events = await history_events(handle)
    (scheduled,) = events_named(events, "ACTIVITY_TASK_SCHEDULED")
    attrs = scheduled.activity_task_scheduled_event_attributes
    assert attrs.task_queue.name == nowhere
    assert attrs.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)
    (started,) = events_named(events, "ACTIVITY_TASK_STARTED")
    started_attrs = started.activity_task_started_event_attributes
    assert started_attrs.attempt == 2
    assert started_attrs.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE


async def test_update_activity_options_is_shown_by_describe(client):
    tq, key = unique("tq-options-desc"), unique("wf-options-desc")
    nowhere = unique("tq-nowhere")
    async with _worker(client, tq):
        handle = await client.start_workflow(RunsOneActivity.run, args=[key, nowhere], id=key, task_queue=tq)
        await _wait_pending(client, key, lambda p: p.state == SCHEDULED, "the activity to be scheduled")
        new = ActivityOptions()
        new.schedule_to_close_timeout.FromTimedelta(timedelta(minutes=5))
        new.retry_policy.maximum_attempts = 5
        new.retry_policy.backoff_coefficient = 3.0
        await client.workflow_service.update_activity_options(
            UpdateActivityOptionsRequest(
                namespace=NS, execution=_execution(key), identity=OPERATOR, id="the-activity", activity_options=new,
                update_mask=FieldMask(paths=["schedule_to_close_timeout", "retry_policy.maximum_attempts",
                                             "retry_policy.backoff_coefficient"]),
            )
        )
        pending = await _pending(client, key)
        options = pending.activity_options
        assert options.schedule_to_close_timeout.ToTimedelta() == timedelta(minutes=5)
        assert options.retry_policy.maximum_attempts == 5
        assert options.retry_policy.backoff_coefficient == 3.0
        assert options.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)  # untouched
        assert options.task_queue.name == nowhere
        assert pending.maximum_attempts == 5
        assert pending.state == SCHEDULED
        await handle.terminate()
