"""Eager execution: StartWorkflowExecution handing back the first workflow task, and
RespondWorkflowTaskCompleted handing back the activity tasks its commands scheduled with
request_eager_execution. Driven by hand over raw RPCs where the wire is the point, and through
the Python SDK (request_eager_start) for what a real worker sees."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, PendingActivityState, WorkflowIdConflictPolicy
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RespondActivityTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.converter import default as default_converter
from temporalio.service import RPCError, RPCStatusCode

from helpers import event_name, history_events, new_worker, unique

NS = "default"
# Long enough for the reference's long-poll floor (it refuses < 2 s: "Context timeout is too short").
EMPTY_POLL_TIMEOUT = timedelta(seconds=3)


def _start_request(tq: str, wf_id: str, identity: str, **fields) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace=NS,
        workflow_id=wf_id,
        workflow_type=WorkflowType(name="HandDriven"),
        task_queue=TaskQueue(name=tq),
        identity=identity,
        request_id=str(uuid.uuid4()),
        **fields,
    )


async def _history(client: Client, wf_id: str) -> list:
    resp = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(namespace=NS, execution=WorkflowExecution(workflow_id=wf_id))
    )
    return list(resp.history.events)


def _names(events) -> list[str]:
    return [event_name(e.event_type) for e in events]


async def _assert_no_workflow_task(client: Client, tq: str) -> None:
    """Nothing waits on the task queue's matching side."""
    try:
        resp = await client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity="bystander"),
            timeout=EMPTY_POLL_TIMEOUT,
        )
    except RPCError as e:  # a server may let the long poll run out instead of answering empty
        assert e.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED), e
        return
    assert not resp.task_token, f"a workflow task was dispatched through matching: {resp.workflow_execution}"


def _complete_command() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(),
    )


# -- eager workflow start ----------------------------------------------------


async def test_eager_start_returns_the_first_workflow_task(client):
    tq, wf_id, identity = unique("tq-eager"), unique("wf-eager"), "eager-worker-1"
    request = _start_request(tq, wf_id, identity, request_eager_execution=True)
    resp = await client.workflow_service.start_workflow_execution(request)

    assert resp.started
    assert resp.HasField("eager_workflow_task")
    task = resp.eager_workflow_task
    assert task.task_token
    assert task.workflow_execution.workflow_id == wf_id
    assert task.workflow_execution.run_id == resp.run_id
    assert task.workflow_type.name == "HandDriven"
    assert task.workflow_execution_task_queue.name == tq
    assert task.started_event_id == 3
    assert task.previous_started_event_id == 0
    assert task.attempt == 1
    assert task.HasField("scheduled_time") and task.HasField("started_time")
    # The whole history so far rides along: started, scheduled, and the task already started.
    events = list(task.history.events)
    assert _names(events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"]
    assert [e.event_id for e in events] == [1, 2, 3]
    started = events[0].workflow_execution_started_event_attributes
    assert started.eager_execution_accepted
    assert started.identity == identity
    wft_started = events[2].workflow_task_started_event_attributes
    assert wft_started.scheduled_event_id == 2
    assert wft_started.identity == identity  # the starter is the worker
    assert wft_started.request_id == request.request_id
    assert task.started_time == events[2].event_time
    # It is the stored history, and matching holds no copy of the task.
    assert _names(await _history(client, wf_id)) == _names(events)
    await _assert_no_workflow_task(client, tq)

    # A retry of the same request (same request id) is the same start and hands the task back again.
    retry = await client.workflow_service.start_workflow_execution(request)
    assert retry.run_id == resp.run_id
    assert retry.started
    assert retry.HasField("eager_workflow_task")
    assert retry.eager_workflow_task.started_event_id == 3
    assert len(retry.eager_workflow_task.history.events) == 3

    # The eager task is a real workflow task: completing it closes the workflow.
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=NS, task_token=task.task_token, identity=identity, commands=[_complete_command()]
        )
    )
    assert _names(await _history(client, wf_id)) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]


async def test_eager_start_not_possible_starts_normally(client):
    """A start delay or a cron schedule defers the first task, so no eager task comes back; an
    existing run (USE_EXISTING) is not started again, so none either."""
    tq = unique("tq-eager-not")
    # Start delay.
    delayed_id = unique("wf-eager-delayed")
    request = _start_request(tq, delayed_id, "eager-worker-2", request_eager_execution=True)
    request.workflow_start_delay.FromTimedelta(timedelta(seconds=30))
    resp = await client.workflow_service.start_workflow_execution(request)
    assert resp.started and resp.run_id
    assert not resp.HasField("eager_workflow_task")
    (first,) = await _history(client, delayed_id)
    attrs = first.workflow_execution_started_event_attributes
    assert not attrs.eager_execution_accepted
    assert attrs.first_workflow_task_backoff.ToTimedelta() == timedelta(seconds=30)

    # Cron schedule.
    cron_id = unique("wf-eager-cron")
    resp = await client.workflow_service.start_workflow_execution(
        _start_request(tq, cron_id, "eager-worker-2", request_eager_execution=True, cron_schedule="0 0 1 1 *")
    )
    assert resp.started
    assert not resp.HasField("eager_workflow_task")

    # An existing run: USE_EXISTING returns it, not started, no task; FAIL refuses.
    running_id = unique("wf-eager-existing")
    created = await client.workflow_service.start_workflow_execution(_start_request(tq, running_id, "starter"))
    resp = await client.workflow_service.start_workflow_execution(
        _start_request(
            tq, running_id, "eager-worker-2", request_eager_execution=True,
            workflow_id_conflict_policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
        )
    )
    assert resp.run_id == created.run_id
    assert not resp.started
    assert not resp.HasField("eager_workflow_task")
    with pytest.raises(RPCError) as exc_info:
        await client.workflow_service.start_workflow_execution(
            _start_request(tq, running_id, "eager-worker-2", request_eager_execution=True)
        )
    assert exc_info.value.status == RPCStatusCode.ALREADY_EXISTS

    for wf_id in (delayed_id, cron_id, running_id):
        await client.get_workflow_handle(wf_id).terminate()


@workflow.defn
class Greeter:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


async def test_sdk_request_eager_start_runs_on_the_local_worker(client):
    tq = unique("tq-eager-sdk")
    async with new_worker(client, tq, workflows=[Greeter]):
        handle = await client.start_workflow(Greeter.run, "eager", id=unique("wf-eager-sdk"), task_queue=tq,
                                             request_eager_start=True)
        assert await handle.result() == "hello eager"
    events = await history_events(handle)
    assert _names(events)[:4] == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
    ]
    assert events[0].workflow_execution_started_event_attributes.eager_execution_accepted
    assert events[2].workflow_task_started_event_attributes.identity == client.identity

    # No worker of this client polls the queue: the SDK does not ask, and the task waits in matching.
    handle = await client.start_workflow(Greeter.run, "later", id=unique("wf-eager-sdk-none"),
                                         task_queue=unique("tq-eager-none"), request_eager_start=True)
    events = await history_events(handle)
    assert _names(events) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    assert not events[0].workflow_execution_started_event_attributes.eager_execution_accepted
    await handle.terminate()


# -- eager activity dispatch -------------------------------------------------


def _schedule(activity_id: str, tq: str, *, eager: bool) -> Command:
    attrs = ScheduleActivityTaskCommandAttributes(
        activity_id=activity_id,
        activity_type=ActivityType(name="HandActivity"),
        task_queue=TaskQueue(name=tq),
        input=Payloads(payloads=[default_converter().payload_converter.to_payload(activity_id)]),
        request_eager_execution=eager,
    )
    attrs.start_to_close_timeout.FromTimedelta(timedelta(seconds=30))
    return Command(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, schedule_activity_task_command_attributes=attrs)


async def test_eager_activity_returned_by_workflow_task_completion(client):
    tq, wf_id, identity = unique("tq-eager-act"), unique("wf-eager-act"), "eager-act-worker"
    start = await client.workflow_service.start_workflow_execution(_start_request(tq, wf_id, "starter"))
    wft = await client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity=identity),
        timeout=timedelta(seconds=20),
    )
    assert wft.task_token

    resp = await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=NS,
            task_token=wft.task_token,
            identity=identity,
            commands=[_schedule("eager-1", tq, eager=True), _schedule("normal-1", tq, eager=False)],
        )
    )
    # Only the activity that asked comes back, already started for this worker.
    assert [t.activity_id for t in resp.activity_tasks] == ["eager-1"]
    (task,) = resp.activity_tasks
    assert task.task_token
    assert task.workflow_namespace == NS
    assert task.workflow_type.name == "HandDriven"
    assert task.workflow_execution.workflow_id == wf_id
    assert task.workflow_execution.run_id == start.run_id
    assert task.activity_type.name == "HandActivity"
    assert task.attempt == 1
    assert task.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)
    assert default_converter().payload_converter.from_payload(task.input.payloads[0], str) == "eager-1"
    assert task.HasField("scheduled_time") and task.HasField("started_time")
    assert task.current_attempt_scheduled_time == task.scheduled_time
    assert task.retry_policy.backoff_coefficient == 2.0  # the server's defaults, filled in

    events = await _history(client, wf_id)
    names = _names(events)
    # The start of an activity is not written until it closes.
    assert names == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_SCHEDULED",
    ]
    eager_scheduled = events[4]
    assert eager_scheduled.activity_task_scheduled_event_attributes.activity_id == "eager-1"
    assert task.scheduled_time == eager_scheduled.event_time

    desc = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=NS, execution=WorkflowExecution(workflow_id=wf_id))
    )
    pending = {p.activity_id: p for p in desc.pending_activities}
    assert pending["eager-1"].state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    assert pending["eager-1"].last_worker_identity == identity
    assert pending["eager-1"].attempt == 1
    assert pending["normal-1"].state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED

    # Matching holds only the other one.
    polled = await client.workflow_service.poll_activity_task_queue(
        PollActivityTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity="poller"),
        timeout=timedelta(seconds=20),
    )
    assert polled.activity_id == "normal-1"
    try:
        again = await client.workflow_service.poll_activity_task_queue(
            PollActivityTaskQueueRequest(namespace=NS, task_queue=TaskQueue(name=tq), identity="poller"),
            timeout=EMPTY_POLL_TIMEOUT,
        )
        assert not again.task_token, f"the eager activity was also dispatched through matching: {again.activity_id}"
    except RPCError as e:
        assert e.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED), e

    # The eager task's token completes the activity; the started event carries the eager worker.
    await client.workflow_service.respond_activity_task_completed(
        RespondActivityTaskCompletedRequest(namespace=NS, task_token=task.task_token, identity=identity)
    )
    events = await _history(client, wf_id)
    started = [e for e in events if event_name(e.event_type) == "ACTIVITY_TASK_STARTED"]
    completed = [e for e in events if event_name(e.event_type) == "ACTIVITY_TASK_COMPLETED"]
    assert len(started) == len(completed) == 1
    s = started[0].activity_task_started_event_attributes
    assert s.scheduled_event_id == eager_scheduled.event_id
    assert s.identity == identity
    assert s.attempt == 1
    assert started[0].event_time == task.started_time
    c = completed[0].activity_task_completed_event_attributes
    assert c.scheduled_event_id == eager_scheduled.event_id
    assert c.started_event_id == started[0].event_id
    assert _names(events)[-1] == "WORKFLOW_TASK_SCHEDULED"
    await client.get_workflow_handle(wf_id).terminate()
