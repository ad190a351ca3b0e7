"""Per-run limits (pending work, payload, memo and search attribute sizes, signals, updates,
history length and size), enforced where and as Temporal enforces them.

Most tests share one private server with the limits lowered (Chronicle through
`CHRONICLE_LIMITS_*`, the reference through `--dynamic-config-value`); every test checks that
the run stays usable (described, history read, terminated) and the server keeps serving."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import workflow
from google.protobuf.duration_pb2 import Duration
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    RecordMarkerCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payload, Payloads
from temporalio.api.enums.v1 import CommandType, SignalExternalWorkflowExecutionFailedCause, WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode

from conftest import _dispose, _start_server, _target
from helpers import event_name, events_named, new_worker, unique, wait_for_event, wait_for_status

# Each lowered limit: Chronicle's name (CHRONICLE_LIMITS_<NAME>) and the reference's
# dynamic config key.
LOWERED = {
    "PENDING_ACTIVITIES": ("limit.numPendingActivities.error", 3),
    "PENDING_CHILDREN": ("limit.numPendingChildExecutions.error", 3),
    "PENDING_SIGNALS": ("limit.numPendingSignals.error", 3),
    "PENDING_CANCEL_REQUESTS": ("limit.numPendingCancelRequests.error", 3),
    "SIGNALS_PER_EXECUTION": ("history.maximumSignalsPerExecution", 3),
    "UPDATES_IN_FLIGHT": ("history.maxInFlightUpdates", 2),
    "UPDATES_PER_RUN": ("history.maxTotalUpdates", 3),
    "BLOB_SIZE_ERROR": ("limit.blobSize.error", 100_000),
    "BLOB_SIZE_WARN": ("limit.blobSize.warn", 50_000),
    "MEMO_SIZE_ERROR": ("limit.memoSize.error", 5_000),
    "MEMO_SIZE_WARN": ("limit.memoSize.warn", 1_000),
    "HISTORY_COUNT_ERROR": ("limit.historyCount.error", 300),
    "HISTORY_COUNT_WARN": ("limit.historyCount.warn", 100),
    "HISTORY_SIZE_ERROR": ("limit.historySize.error", 400_000),
    "HISTORY_SIZE_WARN": ("limit.historySize.warn", 200_000),
}


# Chronicle bounds the updates it holds in memory by their bytes (Temporal has no such bound).
UPDATE_REGISTRY_BYTES = 60_000


@pytest.fixture(scope="module")
def limited(request: pytest.FixtureRequest):
    args = []
    env = {}
    for name, (key, value) in LOWERED.items():
        if _target() == "reference":
            args += ["--dynamic-config-value", f"{key}={value}"]
        else:
            env[f"CHRONICLE_LIMITS_{name}"] = str(value)
    if _target() == "chronicle":
        env["CHRONICLE_MEMORY_PENDING_UPDATES_BYTES"] = str(UPDATE_REGISTRY_BYTES)
    handle = _start_server("limits", args, env)
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


@pytest.fixture
async def lclient(limited) -> Client:
    return await limited.client()


@workflow.defn(name="Hello")
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


@workflow.defn(name="Idle")
class Idle:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="Fanout")
class Fanout:
    """Asks for `count` pieces of pending work of one kind in one workflow task."""

    @workflow.run
    async def run(self, kind: str, count: int) -> None:
        info = workflow.info()
        if kind == "activities":
            for i in range(count):
                workflow.start_activity("Never", task_queue=f"{info.task_queue}-none",
                                        start_to_close_timeout=timedelta(hours=1))
        elif kind == "children":
            for i in range(count):
                await workflow.start_child_workflow(Idle.run, id=f"{info.workflow_id}-child-{i}",
                                                    task_queue=f"{info.task_queue}-none")
        elif kind in ("signals", "cancels"):
            for i in range(count):
                target = workflow.get_external_workflow_handle(f"{info.workflow_id}-missing-{i}")
                if kind == "signals":
                    asyncio.ensure_future(target.signal("ping"))
                else:
                    asyncio.ensure_future(target.cancel())
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="SignalOther")
class SignalOther:
    @workflow.run
    async def run(self, target: str) -> str:
        try:
            await workflow.get_external_workflow_handle(target).signal("anything")
            return "delivered"
        except Exception as e:  # noqa: BLE001 - the failure is the answer
            return f"failed: {e}"


@workflow.defn(name="BigInput")
class BigInput:
    @workflow.run
    async def run(self, size: int) -> None:
        await workflow.execute_activity("Never", "x" * size, task_queue=f"{workflow.info().task_queue}-none",
                                        start_to_close_timeout=timedelta(hours=1))


@workflow.defn(name="Upserts")
class Upserts:
    @workflow.run
    async def run(self, size: int) -> None:
        workflow.upsert_memo({"big": "m" * size})
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="Updatable")
class Updatable:
    def __init__(self) -> None:
        self.release = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def hold(self) -> str:
        await workflow.wait_condition(lambda: self.release)
        return "held"

    @workflow.update
    async def hold_big(self, data: str) -> int:
        await workflow.wait_condition(lambda: self.release)
        return len(data)

    @workflow.update
    async def size(self, data: str) -> int:
        return len(data)

    @workflow.update
    async def quick(self) -> str:
        return "quick"

    @workflow.signal
    async def let_go(self) -> None:
        self.release = True


WORKFLOWS = [Hello, Idle, Fanout, SignalOther, BigInput, Upserts, Updatable]


async def still_usable(client: Client, handle: WorkflowHandle, *, running: bool = True) -> None:
    """The run can be described, read and (if still running) terminated; the server still runs
    other workflows to completion."""
    await handle.describe()
    assert (await handle.fetch_history()).events
    if running:
        await handle.terminate("limits test over")
        await wait_for_status(handle, WorkflowExecutionStatus.TERMINATED)
    tq = unique("lim-hello")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        assert await client.execute_workflow(Hello.run, "after", id=unique("hello"), task_queue=tq) == "hello after"


def failed_tasks(events) -> list:
    return [e.workflow_task_failed_event_attributes for e in events_named(events, "WORKFLOW_TASK_FAILED")]


async def terminated_by_server(handle: WorkflowHandle, reason: str) -> list:
    """Waits for the server to terminate the run for `reason`; returns its history."""
    await wait_for_status(handle, WorkflowExecutionStatus.TERMINATED, timeout=20)
    events = (await handle.fetch_history()).events
    term = events_named(events, "WORKFLOW_EXECUTION_TERMINATED")[0].workflow_execution_terminated_event_attributes
    assert (term.reason, term.identity) == (reason, "history-service")
    return list(events)


async def command_ended_the_run(client: Client, handle: WorkflowHandle, message: str, event: str, cause: int) -> None:
    """A command over a size limit failed its task with `cause` and the run was terminated for
    it; the command's `event` was not written."""
    events = await terminated_by_server(handle, message)
    assert [f.cause for f in failed_tasks(events)] == [cause]
    assert not events_named(events, event)
    await still_usable(client, handle, running=False)


@pytest.mark.parametrize(
    "kind,cause",
    [
        ("activities", WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PENDING_ACTIVITIES_LIMIT_EXCEEDED),
        ("children", WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PENDING_CHILD_WORKFLOWS_LIMIT_EXCEEDED),
        ("signals", WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PENDING_SIGNALS_LIMIT_EXCEEDED),
        ("cancels", WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PENDING_REQUEST_CANCEL_LIMIT_EXCEEDED),
    ],
)
async def test_pending_work_over_the_limit_fails_the_workflow_task(lclient: Client, kind: str, cause: int):
    tq = unique(f"lim-{kind}")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        within = await lclient.start_workflow(Fanout.run, args=[kind, 3], id=unique("within"), task_queue=tq)
        over = await lclient.start_workflow(Fanout.run, args=[kind, 4], id=unique("over"), task_queue=tq)
        events = await wait_for_event(over, "WORKFLOW_TASK_FAILED", timeout=20)
        failed = failed_tasks(events)[0]
        assert WorkflowTaskFailedCause.Name(failed.cause) == WorkflowTaskFailedCause.Name(cause)
        assert "has reached the per-workflow limit of 3" in failed.failure.message
        await wait_for_event(within, "WORKFLOW_TASK_COMPLETED")
        assert not failed_tasks((await within.fetch_history()).events)
        assert (await over.describe()).status == WorkflowExecutionStatus.RUNNING
        await still_usable(lclient, over)
        await still_usable(lclient, within)


async def raw_task(client: Client, workflow_type: str, **start):
    """Starts a run of `workflow_type` and polls its first workflow task, as a worker would."""
    tq = unique("lim-raw")
    handle = await client.start_workflow(workflow_type, id=unique("raw"), task_queue=tq, **start)
    task = await client.workflow_service.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=tq), identity="raw"))
    return handle, task


async def complete(client: Client, task, commands: list[Command]) -> None:
    await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace=client.namespace, task_token=task.task_token,
                                            commands=commands, identity="raw"))


def marker(i: int, size: int = 0) -> Command:
    details = {"data": Payloads(payloads=[Payload(data=b"d" * size)])} if size else {}
    return Command(command_type=CommandType.COMMAND_TYPE_RECORD_MARKER,
                   record_marker_command_attributes=RecordMarkerCommandAttributes(marker_name=f"m{i}", details=details))


async def test_activity_input_over_blob_limit_terminates_the_run(lclient: Client):
    handle, task = await raw_task(lclient, "Raw")
    schedule = Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
            activity_id="a", activity_type=ActivityType(name="A"), task_queue=TaskQueue(name="nowhere"),
            start_to_close_timeout=Duration(seconds=10), input=Payloads(payloads=[Payload(data=b"x" * 150_000)])))
    message = "BadScheduleActivityAttributes: ScheduleActivityTaskCommandAttributes.Input exceeds size limit."
    with pytest.raises(RPCError) as err:
        await complete(lclient, task, [schedule])
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    await command_ended_the_run(lclient, handle, message, "ACTIVITY_TASK_SCHEDULED",
                                WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES)


async def test_the_namespace_advertises_its_payload_limits_to_the_sdk(lclient: Client):
    described = await lclient.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=lclient.namespace))
    limits = described.namespace_info.limits
    assert (limits.blob_size_limit_error, limits.memo_size_limit_error) == (100_000, 5_000)
    # The SDK then refuses an oversized activity input itself, failing its workflow task.
    tq = unique("lim-sdk")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        handle = await lclient.start_workflow(BigInput.run, 150_000, id=unique("sdk-blob"), task_queue=tq)
        events = await wait_for_event(handle, "WORKFLOW_TASK_FAILED", timeout=20)
        assert failed_tasks(events)[0].cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PAYLOADS_TOO_LARGE
        await still_usable(lclient, handle)


async def test_memo_over_limit_at_start_is_refused(lclient: Client):
    tq = unique("lim-start")
    with pytest.raises(RPCError) as err:
        await lclient.start_workflow(Idle.run, id=unique("memo"), task_queue=tq, memo={"big": "m" * 6000})
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, "Memo size exceeds limit.")
    with pytest.raises(RPCError) as err:
        await lclient.start_workflow(Idle.run, id=unique("memo"), task_queue=tq, memo={"big": "m" * 6000},
                                     start_signal="go")
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    handle = await lclient.start_workflow(Idle.run, id=unique("memo"), task_queue=tq, memo={"small": "m" * 2000})
    await still_usable(lclient, handle)


async def test_memo_upsert_over_limit_terminates_the_run(lclient: Client):
    tq = unique("lim-upsert")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        handle = await lclient.start_workflow(Upserts.run, 6000, id=unique("upsert"), task_queue=tq)
        message = ("BadModifyWorkflowPropertiesAttributes: ModifyWorkflowPropertiesCommandAttributes. "
                   "Memo exceeds size limit.")
        await command_ended_the_run(
            lclient, handle, message, "WORKFLOW_PROPERTIES_MODIFIED",
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_MODIFY_WORKFLOW_PROPERTIES_ATTRIBUTES)


async def test_signals_beyond_the_per_execution_limit_are_refused(lclient: Client):
    tq = unique("lim-signals")
    handle = await lclient.start_workflow(Idle.run, id=unique("sig"), task_queue=tq)
    for _ in range(3):
        await handle.signal("anything")
    message = "exceeded workflow execution limit for signal events"
    with pytest.raises(RPCError) as err:
        await handle.signal("anything")
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    with pytest.raises(RPCError) as err:
        await lclient.start_workflow(Idle.run, id=handle.id, task_queue=tq, start_signal="anything")
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    assert len(events_named((await handle.fetch_history()).events, "WORKFLOW_EXECUTION_SIGNALED")) == 3
    await still_usable(lclient, handle)


async def test_a_signal_from_a_workflow_beyond_the_targets_limit_fails(lclient: Client):
    tq = unique("lim-signal-external")
    target = await lclient.start_workflow(Idle.run, id=unique("sig-target"), task_queue=tq)
    for _ in range(3):
        await target.signal("anything")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        sender = await lclient.start_workflow(SignalOther.run, target.id, id=unique("sig-sender"), task_queue=tq)
        assert (await sender.result()).startswith("failed")
    failed = events_named((await sender.fetch_history()).events, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED")
    assert [e.signal_external_workflow_execution_failed_event_attributes.cause for e in failed] == [
        SignalExternalWorkflowExecutionFailedCause.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_SIGNAL_COUNT_LIMIT_EXCEEDED]
    assert len(events_named((await target.fetch_history()).events, "WORKFLOW_EXECUTION_SIGNALED")) == 3
    await still_usable(lclient, target)


async def test_updates_beyond_in_flight_and_per_run_limits_are_refused(lclient: Client):
    tq = unique("lim-updates")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        handle = await lclient.start_workflow(Updatable.run, id=unique("upd"), task_queue=tq)
        held = [await handle.start_update(Updatable.hold, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
                for _ in range(2)]
        with pytest.raises(RPCError) as err:
            await handle.start_update(Updatable.hold, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert err.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
        assert err.value.message == "limit on number of concurrent in-flight updates has been reached (2)"
        await handle.signal(Updatable.let_go)
        assert [await h.result() for h in held] == ["held", "held"]
        assert await handle.execute_update(Updatable.quick) == "quick"
        with pytest.raises(RPCError) as err:
            await handle.execute_update(Updatable.quick)
        assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert err.value.message.startswith(
            "The limit on the total number of distinct updates in this workflow has been reached (3).")
        await still_usable(lclient, handle)


async def test_updates_beyond_the_node_memory_bound_are_refused(lclient: Client, limited):
    if limited.is_reference:
        pytest.skip("Chronicle's own bound: the reference holds updates without one")
    tq = unique("lim-update-bytes")
    async with new_worker(lclient, tq, workflows=WORKFLOWS):
        handle = await lclient.start_workflow(Updatable.run, id=unique("upd-bytes"), task_queue=tq)
        big = "x" * (UPDATE_REGISTRY_BYTES * 2 // 3)
        first = await handle.start_update(Updatable.hold_big, big, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        with pytest.raises(RPCError) as err:
            await handle.start_update(Updatable.hold_big, big, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert err.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
        await handle.signal(Updatable.let_go)
        assert await first.result() == len(big)
        # The completed update's bytes are released.
        second = await handle.start_update(Updatable.hold_big, big, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert await second.result() == len(big)
        await still_usable(lclient, handle)


async def test_as_many_large_updates_as_may_be_in_flight_all_complete(client: Client):
    """At the default limits: ten updates of 300 KB at once (a poll response can carry only some
    of them) are all delivered and answered."""
    tq = unique("lim-big-updates")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        handle = await client.start_workflow(Updatable.run, id=unique("big-updates"), task_queue=tq)
        data = "u" * 300_000
        sizes = await asyncio.gather(*(handle.execute_update(Updatable.size, data, id=f"u{i}") for i in range(10)))
        assert sizes == [len(data)] * 10
        await still_usable(client, handle)


async def test_history_count_over_limit_terminates_the_run(lclient: Client):
    handle, task = await raw_task(lclient, "Markers")
    reason = "Workflow history count exceeds limit."
    with pytest.raises(RPCError) as err:
        await complete(lclient, task, [marker(i) for i in range(400)])
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, reason)
    events = await terminated_by_server(handle, reason)
    # The commands of the task that crossed the limit are not kept.
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED", "WORKFLOW_EXECUTION_TERMINATED"]
    failed = failed_tasks(events)[0]
    assert (failed.cause, failed.identity) == (
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND, "history-service")
    await still_usable(lclient, handle, running=False)


async def test_history_size_over_limit_terminates_the_run_at_its_next_task(lclient: Client):
    handle, task = await raw_task(lclient, "Markers")
    # Written whole: the size of a task's own events counts from the next task on.
    response = await lclient.workflow_service.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest(
        namespace=lclient.namespace, task_token=task.task_token, commands=[marker(i, 90_000) for i in range(6)],
        identity="raw", force_create_new_workflow_task=True, return_new_workflow_task=True))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    reason = "Workflow history size exceeds limit."
    with pytest.raises(RPCError) as err:
        await complete(lclient, response.workflow_task, [marker(7)])
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, reason)
    events = await terminated_by_server(handle, reason)
    assert len(events_named(events, "MARKER_RECORDED")) == 6
    await still_usable(lclient, handle, running=False)


async def test_signal_to_a_run_over_its_history_size_is_refused(lclient: Client):
    handle, task = await raw_task(lclient, "Markers")
    await complete(lclient, task, [marker(i, 90_000) for i in range(6)])
    with pytest.raises(RPCError) as err:
        await handle.signal("again")
    assert (err.value.status, err.value.message) == (
        RPCStatusCode.INVALID_ARGUMENT, "Workflow history size exceeds limit.")
    await still_usable(lclient, handle, running=(await handle.describe()).status == WorkflowExecutionStatus.RUNNING)


async def test_eleven_thousand_markers_in_one_completion_complete_the_run(client: Client):
    """At the default limits (51,200 events) 11,000 markers are well within a run's history."""
    handle, task = await raw_task(client, "Markers")
    done = Command(command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
                   complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes())
    await complete(client, task, [marker(i) for i in range(11_000)] + [done])
    await wait_for_status(handle, WorkflowExecutionStatus.COMPLETED, timeout=30)
    events = (await handle.fetch_history()).events
    assert len(events_named(events, "MARKER_RECORDED")) == 11_000
    assert event_name(events[-1].event_type) == "WORKFLOW_EXECUTION_COMPLETED"
    assert len(events) == 11_005
    await still_usable(client, handle, running=False)
