"""Absurd durations, schedules and payload sizes never panic, spin or overflow the server.

Requests are hand-built and sent through the raw gRPC stub; workflow tasks are answered by
hand too, so each command carries exactly the bad value under test. Every absurd value is
refused with INVALID_ARGUMENT naming the field (or fails the workflow task with Temporal's
cause), the server stays up, the queue keeps serving polls, and a workflow started before
the abuse still completes.

Where Chronicle refuses what the reference accepts (durations outside protobuf's range,
oversized headers and terminate details), the test says so with `BETTER_THAN_REFERENCE`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ContinueAsNewWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes,
    StartTimerCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payload, Payloads, RetryPolicy, WorkflowType
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.enums.v1 import CommandType, EventType, WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RecordActivityTaskHeartbeatRequest,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskFailedRequest,
    RespondWorkflowTaskCompletedRequest,
    RespondWorkflowTaskFailedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.service import RPCError, RPCStatusCode

from helpers import unique

I64_MAX = 2**63 - 1
MAX_PROTO_SECONDS = 315_576_000_000
BLOB_LIMIT = 2 * 1024 * 1024
BIG = Payloads(payloads=[Payload(data=b"x" * (BLOB_LIMIT + 1024))])
BETTER_THAN_REFERENCE = "the reference accepts this value; Chronicle refuses it on purpose"
TIMEOUT = timedelta(seconds=10)


def start_request(namespace: str, task_queue: str | None = None) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace=namespace,
        workflow_id=unique("wf-abuse"),
        workflow_type=WorkflowType(name="AbuseWorkflow"),
        task_queue=TaskQueue(name=task_queue or unique("tq-abuse")),
        request_id=str(uuid.uuid4()),
        identity="abuse",
    )


async def expect_invalid(call, *words: str) -> str:
    with pytest.raises(RPCError) as info:
        await call
    error = info.value
    assert error.status == RPCStatusCode.INVALID_ARGUMENT, f"{error.status.name}: {error.message}"
    for word in words:
        assert word.lower() in error.message.lower(), error.message
    return error.message


async def terminate(client, workflow_id: str) -> None:
    await client.get_workflow_handle(workflow_id).terminate(reason="cleanup")


class RawRun:
    """One run whose workflow tasks the test answers by hand."""

    def __init__(self, client, request: StartWorkflowExecutionRequest) -> None:
        self.client = client
        self.request = request
        self.task_queue = request.task_queue.name

    @classmethod
    async def start(cls, client) -> RawRun:
        run = cls(client, start_request(client.namespace))
        await client.workflow_service.start_workflow_execution(run.request)
        return run

    async def poll(self):
        task = await self.client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=self.task_queue),
                identity="abuse",
            ),
            timeout=TIMEOUT,
        )
        assert task.task_token, "no workflow task within the poll"
        return task

    async def respond(self, task, *commands: Command):
        return await self.client.workflow_service.respond_workflow_task_completed(
            RespondWorkflowTaskCompletedRequest(
                namespace=self.client.namespace,
                task_token=task.task_token,
                commands=list(commands),
                identity="abuse",
            )
        )

    async def events(self):
        history = await self.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=self.client.namespace,
                execution={"workflow_id": self.request.workflow_id},
            )
        )
        return list(history.history.events)

    async def complete(self) -> None:
        """Answers the next workflow task by completing: the run still works."""
        await self.respond(await self.poll(), complete_command())
        events = await self.events()
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


def complete_command() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(),
    )


@pytest.fixture(scope="module")
def survivor():
    """A workflow id started before any abuse, completed by the last test."""
    return {}


async def test_a_workflow_started_before_the_abuse(client, survivor):
    survivor["run"] = await RawRun.start(client)


# -- durations on StartWorkflowExecution ------------------------------------------------

DURATION_FIELDS = {
    "workflow_execution_timeout": "WorkflowExecutionTimeout",
    "workflow_run_timeout": "WorkflowRunTimeout",
    "workflow_task_timeout": "WorkflowTaskTimeout",
    "workflow_start_delay": "WorkflowStartDelay",
}


@pytest.mark.parametrize("field", DURATION_FIELDS)
@pytest.mark.parametrize(
    ("seconds", "nanos", "cause", "reference_agrees"),
    [
        (-(2**63), 0, "", True),
        (-1, 0, "negative", True),
        (1, -5, "different signs", True),
        (-1, 5, "different signs", True),
        (I64_MAX, 0, "out of range", False),
        (MAX_PROTO_SECONDS + 1, 0, "out of range", False),
        (0, 1_000_000_000, "out of range", False),
    ],
)
async def test_bad_start_durations_are_refused_by_name(
    server, client, field, seconds, nanos, cause, reference_agrees
):
    if server.is_reference and not reference_agrees:
        pytest.skip(BETTER_THAN_REFERENCE)
    req = start_request(client.namespace)
    getattr(req, field).seconds = seconds
    getattr(req, field).nanos = nanos
    await expect_invalid(client.workflow_service.start_workflow_execution(req), DURATION_FIELDS[field], cause)


@pytest.mark.parametrize("field", DURATION_FIELDS)
async def test_the_longest_valid_durations_are_accepted(client, field):
    req = start_request(client.namespace)
    getattr(req, field).seconds = MAX_PROTO_SECONDS
    getattr(req, field).nanos = 999_999_999
    await client.workflow_service.start_workflow_execution(req)
    handle = client.get_workflow_handle(req.workflow_id)
    description = await handle.describe()
    assert description.status is not None
    await terminate(client, req.workflow_id)


# -- retry policies --------------------------------------------------------------------


def _policy(**fields) -> RetryPolicy:
    policy = RetryPolicy()
    for name, value in fields.items():
        if name.endswith("_interval"):
            getattr(policy, name).seconds = value
        else:
            setattr(policy, name, value)
    return policy


@pytest.mark.parametrize(
    ("policy", "words", "reference_agrees"),
    [
        (_policy(initial_interval=-1), ("InitialInterval", "negative"), True),
        (_policy(maximum_interval=-1), ("MaximumInterval", "negative"), True),
        (_policy(initial_interval=10, maximum_interval=5), ("MaximumInterval", "InitialInterval"), True),
        (_policy(backoff_coefficient=0.5), ("BackoffCoefficient",), True),
        (_policy(maximum_attempts=-1), ("MaximumAttempts",), True),
        (_policy(initial_interval=I64_MAX), ("InitialInterval", "out of range"), False),
        (_policy(backoff_coefficient=float("nan")), ("BackoffCoefficient",), False),
    ],
)
async def test_bad_retry_policies_are_refused(server, client, policy, words, reference_agrees):
    if server.is_reference and not reference_agrees:
        pytest.skip(BETTER_THAN_REFERENCE)
    req = start_request(client.namespace)
    req.retry_policy.CopyFrom(policy)
    await expect_invalid(client.workflow_service.start_workflow_execution(req), *words)


async def test_an_infinite_backoff_coefficient_is_only_a_fast_climb(client):
    req = start_request(client.namespace)
    req.retry_policy.CopyFrom(_policy(backoff_coefficient=float("inf")))
    await client.workflow_service.start_workflow_execution(req)
    await terminate(client, req.workflow_id)


# -- cron ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule", ["@every 99999999999999999999h", "@every 2562048h", "0 0 30 2 *", "not a schedule"]
)
async def test_impossible_cron_schedules_are_refused(client, schedule):
    req = start_request(client.namespace)
    req.cron_schedule = schedule
    await expect_invalid(client.workflow_service.start_workflow_execution(req), "CronSchedule")


@pytest.mark.parametrize("schedule", ["@every 1ns", "@every 1ms", "@every 2562047h"])
async def test_extreme_every_intervals_are_accepted_without_spinning(client, schedule):
    req = start_request(client.namespace)
    req.cron_schedule = schedule
    await client.workflow_service.start_workflow_execution(req)
    handle = client.get_workflow_handle(req.workflow_id)
    # A busy loop would hold the run's lock: a describe answers only once it is free.
    await handle.describe(rpc_timeout=timedelta(seconds=5))
    await terminate(client, req.workflow_id)


# -- payload sizes ---------------------------------------------------------------------


async def test_oversized_input_is_refused(client):
    req = start_request(client.namespace)
    req.input.CopyFrom(BIG)
    await expect_invalid(client.workflow_service.start_workflow_execution(req), "Blob data size exceeds limit")


async def test_oversized_signal_input_is_refused(client):
    req = start_request(client.namespace)
    req.workflow_start_delay.seconds = 60
    await client.workflow_service.start_workflow_execution(req)
    signal = SignalWorkflowExecutionRequest(
        namespace=client.namespace, signal_name="s", request_id=str(uuid.uuid4())
    )
    signal.workflow_execution.workflow_id = req.workflow_id
    signal.input.CopyFrom(BIG)
    await expect_invalid(client.workflow_service.signal_workflow_execution(signal), "Blob data size exceeds limit")
    await terminate(client, req.workflow_id)


async def test_oversized_headers_and_terminate_details_are_refused(server, client):
    if server.is_reference:
        pytest.skip(BETTER_THAN_REFERENCE)
    req = start_request(client.namespace)
    req.header.fields["big"].data = b"x" * (BLOB_LIMIT + 1024)
    await expect_invalid(client.workflow_service.start_workflow_execution(req), "Blob data size", "Header")
    req.ClearField("header")
    await client.workflow_service.start_workflow_execution(req)
    end = TerminateWorkflowExecutionRequest(namespace=client.namespace, reason="r")
    end.workflow_execution.workflow_id = req.workflow_id
    end.details.CopyFrom(BIG)
    await expect_invalid(client.workflow_service.terminate_workflow_execution(end), "Blob data size", "Details")
    await terminate(client, req.workflow_id)


async def test_a_message_over_4mb_is_resource_exhausted(client):
    req = start_request(client.namespace)
    req.input.CopyFrom(Payloads(payloads=[Payload(data=b"x" * (5 * 1024 * 1024))]))
    with pytest.raises(RPCError) as info:
        await client.workflow_service.start_workflow_execution(req)
    assert info.value.status == RPCStatusCode.RESOURCE_EXHAUSTED, info.value.message
    assert "larger than max" in info.value.message


# -- commands with bad durations fail the workflow task --------------------------------


def timer(seconds: int, nanos: int = 0) -> Command:
    attributes = StartTimerCommandAttributes(timer_id="t")
    attributes.start_to_fire_timeout.seconds = seconds
    attributes.start_to_fire_timeout.nanos = nanos
    return Command(command_type=CommandType.COMMAND_TYPE_START_TIMER, start_timer_command_attributes=attributes)


def activity(task_queue: str, seconds: int, nanos: int = 0) -> Command:
    attributes = ScheduleActivityTaskCommandAttributes(
        activity_id="a", activity_type=ActivityType(name="A"), task_queue=TaskQueue(name=task_queue)
    )
    attributes.start_to_close_timeout.seconds = seconds
    attributes.start_to_close_timeout.nanos = nanos
    attributes.retry_policy.maximum_attempts = 1
    return Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=attributes,
    )


def child(seconds: int, nanos: int = 0) -> Command:
    attributes = StartChildWorkflowExecutionCommandAttributes(
        namespace="", workflow_id=unique("child"), workflow_type=WorkflowType(name="Child")
    )
    attributes.workflow_run_timeout.seconds = seconds
    attributes.workflow_run_timeout.nanos = nanos
    return Command(
        command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=attributes,
    )


def continue_as_new(seconds: int, nanos: int = 0) -> Command:
    attributes = ContinueAsNewWorkflowExecutionCommandAttributes(workflow_type=WorkflowType(name="AbuseWorkflow"))
    attributes.workflow_run_timeout.seconds = seconds
    attributes.workflow_run_timeout.nanos = nanos
    return Command(
        command_type=CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        continue_as_new_workflow_execution_command_attributes=attributes,
    )


COMMANDS = {
    "timer": (lambda q, s, n: timer(s, n), "StartToFireTimeout", "BAD_START_TIMER_ATTRIBUTES"),
    "activity": (activity, "StartToCloseTimeout", "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES"),
    "child": (lambda q, s, n: child(s, n), "WorkflowRunTimeout", "BAD_START_CHILD_EXECUTION_ATTRIBUTES"),
    "continue_as_new": (
        lambda q, s, n: continue_as_new(s, n),
        "WorkflowRunTimeout",
        "BAD_CONTINUE_AS_NEW_ATTRIBUTES",
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("seconds", "nanos", "reference_agrees"),
    [(-5, 0, True), (1, -1, True), (I64_MAX, 0, False)],
)
async def test_bad_command_durations_fail_the_workflow_task(server, client, command, seconds, nanos, reference_agrees):
    if server.is_reference and not reference_agrees:
        pytest.skip(BETTER_THAN_REFERENCE)
    build, field, cause = COMMANDS[command]
    run = await RawRun.start(client)
    # As in Temporal: the worker is told why, and the task fails with the command's cause.
    await expect_invalid(run.respond(await run.poll(), build(run.task_queue, seconds, nanos)), field)
    failed = [e for e in await run.events() if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed, "the workflow task did not fail"
    attributes = failed[-1].workflow_task_failed_event_attributes
    assert WorkflowTaskFailedCause.Name(attributes.cause) == f"WORKFLOW_TASK_FAILED_CAUSE_{cause}"
    await run.complete()


async def test_the_longest_timer_and_activity_timeouts_are_accepted(client):
    run = await RawRun.start(client)
    activity_queue = unique("tq-abuse-activity")
    await run.respond(
        await run.poll(), timer(MAX_PROTO_SECONDS, 999_999_999), activity(activity_queue, MAX_PROTO_SECONDS)
    )
    # The activity's timers are armed as it is handed out: the poll must still answer.
    task = await client.workflow_service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=activity_queue)),
        timeout=TIMEOUT,
    )
    assert task.task_token
    await client.workflow_service.respond_activity_task_completed(
        RespondActivityTaskCompletedRequest(namespace=client.namespace, task_token=task.task_token)
    )
    await run.complete()


# -- oversized activity payloads fail the activity, as in Temporal ----------------------


async def _activity_task(client):
    run = await RawRun.start(client)
    activity_queue = unique("tq-abuse-activity")
    await run.respond(await run.poll(), activity(activity_queue, 30))
    task = await client.workflow_service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=activity_queue)),
        timeout=TIMEOUT,
    )
    assert task.task_token
    return run, task


async def _activity_failure(run) -> str:
    for _ in range(50):
        events = await run.events()
        failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
        if failed:
            return failed[-1].activity_task_failed_event_attributes.failure.message
    raise AssertionError("the activity did not fail")


async def test_an_oversized_activity_result_fails_the_activity(client):
    run, task = await _activity_task(client)
    await client.workflow_service.respond_activity_task_completed(
        RespondActivityTaskCompletedRequest(namespace=client.namespace, task_token=task.task_token, result=BIG)
    )
    assert "exceeds size limit" in await _activity_failure(run)
    await run.complete()


async def test_an_oversized_activity_failure_is_replaced_by_the_reason(client):
    run, task = await _activity_task(client)
    failure = Failure(message="x" * (BLOB_LIMIT + 1024), application_failure_info=ApplicationFailureInfo())
    await client.workflow_service.respond_activity_task_failed(
        RespondActivityTaskFailedRequest(namespace=client.namespace, task_token=task.task_token, failure=failure)
    )
    assert "exceeds size limit" in await _activity_failure(run)
    await run.complete()


async def test_oversized_heartbeat_details_fail_the_activity(client):
    run, task = await _activity_task(client)
    answer = await client.workflow_service.record_activity_task_heartbeat(
        RecordActivityTaskHeartbeatRequest(namespace=client.namespace, task_token=task.task_token, details=BIG)
    )
    assert answer.cancel_requested
    assert "exceed size limit" in await _activity_failure(run)
    await run.complete()


async def test_an_oversized_workflow_task_failure_is_replaced_by_the_reason(client):
    run = await RawRun.start(client)
    task = await run.poll()
    failure = Failure(message="x" * (BLOB_LIMIT + 1024), application_failure_info=ApplicationFailureInfo())
    await client.workflow_service.respond_workflow_task_failed(
        RespondWorkflowTaskFailedRequest(namespace=client.namespace, task_token=task.task_token, failure=failure)
    )
    failed = [e for e in await run.events() if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed, "the workflow task did not fail"
    message = failed[-1].workflow_task_failed_event_attributes.failure.message
    assert "exceeds size limit" in message, message[:200]
    await run.complete()


# -- afterwards ------------------------------------------------------------------------


async def test_the_workflow_started_before_the_abuse_completes(client, survivor):
    if "run" not in survivor:
        pytest.skip("the first test of this file did not run")
    await survivor["run"].complete()
