"""Core API the SDKs rely on beside running workflows: zero-length timers, the capabilities
GetSystemInfo advertises, history read newest first, deleting one workflow run, run ids, the
worker build recorded on each workflow task, and user metadata (summaries and details)."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    GetSystemInfoRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from helpers import eventually, history_events, new_worker, unique


@workflow.defn
class ZeroTimers:
    """Starts its timers in its first task: each fires at once instead of failing the task."""

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0)
        await asyncio.sleep(0)
        try:
            await workflow.wait_condition(lambda: False, timeout=0)
            return "condition met"
        except asyncio.TimeoutError:
            return "slept; condition timed out"


async def test_zero_length_timers_fire_at_once(client) -> None:
    queue = unique("zero-timers")
    async with new_worker(client, queue, workflows=[ZeroTimers]):
        result = await client.execute_workflow(
            ZeroTimers.run, id=unique("zero"), task_queue=queue, execution_timeout=timedelta(seconds=20)
        )
    assert result == "slept; condition timed out"


async def test_system_info_advertises_the_capabilities_the_sdks_check(client) -> None:
    """The flags the reference sets and Chronicle honours (the reference also sets nexus:
    claimed here once it works, since SDKs change behaviour on these flags)."""
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    capabilities = info.capabilities
    assert capabilities.signal_and_query_header
    assert capabilities.internal_error_differentiation
    assert capabilities.activity_failure_include_heartbeat
    assert capabilities.encoded_failure_attributes
    assert capabilities.upsert_memo
    assert capabilities.sdk_metadata
    assert capabilities.count_group_by_execution_status
    assert capabilities.supports_schedules
    assert capabilities.eager_workflow_start


@workflow.defn
class Counter:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(n):
            await workflow.sleep(0.01)
        return n


async def test_history_reads_newest_first_in_pages(client) -> None:
    queue = unique("reverse")
    async with new_worker(client, queue, workflows=[Counter]):
        handle = await client.start_workflow(Counter.run, 5, id=unique("reverse"), task_queue=queue)
        await handle.result()
    forward = await history_events(handle)
    execution = WorkflowExecution(workflow_id=handle.id, run_id=handle.result_run_id or "")
    backward, token = [], b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(
                namespace=client.namespace, execution=execution, maximum_page_size=4, next_page_token=token
            )
        )
        backward.extend(page.history.events)
        token = page.next_page_token
        if not token:
            break
    assert [e.event_id for e in backward] == [e.event_id for e in reversed(forward)]
    assert backward[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def test_history_reverse_of_an_unknown_run_is_not_found(client) -> None:
    execution = WorkflowExecution(workflow_id=unique("never"))
    with pytest.raises(RPCError) as failure:
        await client.workflow_service.get_workflow_execution_history_reverse(
            GetWorkflowExecutionHistoryReverseRequest(namespace=client.namespace, execution=execution)
        )
    assert failure.value.status == RPCStatusCode.NOT_FOUND


@workflow.defn
class Waiting:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"


async def _delete(client, workflow_id: str, run_id: str = "") -> None:
    await client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id)
        )
    )


async def _gone(client, handle) -> bool:
    try:
        await handle.describe()
    except RPCError as e:
        return e.status == RPCStatusCode.NOT_FOUND
    return False


async def test_deleting_a_running_workflow_terminates_it_then_removes_it(client) -> None:
    queue = unique("delete")
    async with new_worker(client, queue, workflows=[Waiting]):
        handle = await client.start_workflow(Waiting.run, id=unique("delete"), task_queue=queue)
        await eventually(
            lambda: history_events(handle),
            lambda events: any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events),
            what="the first workflow task",
        )
        await _delete(client, handle.id)
    await eventually(lambda: _gone(client, handle), bool, what="the run to go")
    await eventually(
        lambda: _listed(client, handle.id), lambda n: n == 0, what="the run to leave visibility"
    )
    # The id is free again: a new run starts under it.
    again = await client.start_workflow(Waiting.run, id=handle.id, task_queue=queue)
    assert (await again.describe()).status == WorkflowExecutionStatus.RUNNING
    await again.terminate()


async def _listed(client, workflow_id: str) -> int:
    return len([w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")])


async def test_deleting_a_closed_run_by_id_leaves_the_others(client) -> None:
    queue = unique("delete-closed")
    async with new_worker(client, queue, workflows=[Counter]):
        workflow_id = unique("delete-closed")
        first = await client.start_workflow(Counter.run, 1, id=workflow_id, task_queue=queue)
        await first.result()
        second = await client.start_workflow(Counter.run, 2, id=workflow_id, task_queue=queue)
        await second.result()
    await _delete(client, workflow_id, first.result_run_id or "")
    old = client.get_workflow_handle(workflow_id, run_id=first.result_run_id)
    # The reference removes a closed run about a minute after the call; Chronicle at once.
    await eventually(lambda: _gone(client, old), bool, what="the first run to go", timeout=120)
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id == second.result_run_id
    await eventually(
        lambda: _listed(client, workflow_id), lambda n: n == 1, what="only the second run to be listed"
    )


async def test_deleting_an_unknown_workflow_is_not_found(client) -> None:
    with pytest.raises(RPCError) as failure:
        await _delete(client, unique("never"))
    assert failure.value.status == RPCStatusCode.NOT_FOUND



async def test_run_ids_are_uuid_v7_in_creation_order(client) -> None:
    queue = unique("run-ids")
    first = await client.start_workflow(Waiting.run, id=unique("v7"), task_queue=queue)
    await asyncio.sleep(0.01)
    second = await client.start_workflow(Waiting.run, id=unique("v7"), task_queue=queue)
    ids = [first.result_run_id or "", second.result_run_id or ""]
    assert [uuid.UUID(i).version for i in ids] == [7, 7]
    assert ids[0] < ids[1]
    for handle in (first, second):
        await handle.terminate()


@workflow.defn
class BuildReporter:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.05)  # the second task reads back what the first recorded
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return workflow.info().get_current_build_id()


async def test_the_workers_build_id_is_recorded_and_read_back(client) -> None:
    queue = unique("build")
    async with new_worker(client, queue, workflows=[BuildReporter], build_id="build-42"):
        handle = await client.start_workflow(BuildReporter.run, id=unique("build"), task_queue=queue)
        assert await handle.result() == "build-42"
    completed = [
        e.workflow_task_completed_event_attributes
        for e in await history_events(handle)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert [c.worker_version.build_id for c in completed] == ["build-42", "build-42"]
    described = (await handle.describe()).raw_description.workflow_execution_info
    assert described.most_recent_worker_version_stamp.build_id == "build-42"


async def test_signal_with_start_honours_the_workflow_id_conflict_policy(client) -> None:
    queue, workflow_id = unique("sws"), unique("sws")

    async def signal_with_start(policy: WorkflowIDConflictPolicy):
        return await client.start_workflow(
            Waiting.run, id=workflow_id, task_queue=queue, start_signal="poke", id_conflict_policy=policy
        )

    first = await client.start_workflow(Waiting.run, id=workflow_id, task_queue=queue)
    same = await signal_with_start(WorkflowIDConflictPolicy.USE_EXISTING)
    assert same.result_run_id == first.result_run_id
    with pytest.raises(RPCError) as refused:
        await signal_with_start(WorkflowIDConflictPolicy.FAIL)
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert refused.value.message == (
        "Invalid WorkflowIDConflictPolicy: WORKFLOW_ID_CONFLICT_POLICY_FAIL is not supported for this operation."
    )
    replaced = await signal_with_start(WorkflowIDConflictPolicy.TERMINATE_EXISTING)
    assert replaced.result_run_id != first.result_run_id
    old = client.get_workflow_handle(workflow_id, run_id=first.result_run_id)
    assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
    signals = [
        e for e in await history_events(client.get_workflow_handle(workflow_id))
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert len(signals) == 1, "the new run starts with its signal"
    await client.get_workflow_handle(workflow_id).terminate()


@workflow.defn
class Summarised:
    """Gives a summary to each thing it starts: an activity, a timer and a child."""

    @workflow.run
    async def run(self, child: bool) -> str:
        if child:
            return "child"
        await workflow.execute_activity(
            "noop", start_to_close_timeout=timedelta(seconds=10), summary="the activity"
        )
        await workflow.sleep(0.01, summary="the timer")
        return await workflow.execute_child_workflow(
            Summarised.run,
            True,
            id=f"{workflow.info().workflow_id}-child",
            static_summary="the child",
            static_details="the child's details",
        )


async def test_user_metadata_is_stored_on_events_and_returned_by_describe(client) -> None:
    """Temporal's user metadata: a workflow's static summary and details come back from
    describe and on its started event; the summary an activity, a timer or a child is given
    is on the event its command wrote, and a child gets its summary and details as its own."""
    from temporalio import activity

    @activity.defn(name="noop")
    async def noop() -> None:
        return None

    tq, wf_id = unique("tq"), unique("wf-meta")
    async with new_worker(client, tq, workflows=[Summarised], activities=[noop]):
        handle = await client.start_workflow(
            Summarised.run,
            False,
            id=wf_id,
            task_queue=tq,
            static_summary="the workflow",
            static_details="the details",
        )
        assert await handle.result() == "child"

    converter = client.data_converter.payload_converter

    def text(payload) -> str:
        return converter.from_payload(payload, str)

    desc = await handle.describe()
    metadata = desc.raw_description.execution_config.user_metadata
    assert (text(metadata.summary), text(metadata.details)) == ("the workflow", "the details")
    events = await history_events(handle)
    assert text(events[0].user_metadata.summary) == "the workflow"
    by_type = {e.event_type: e for e in events}
    summaries = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "the activity",
        EventType.EVENT_TYPE_TIMER_STARTED: "the timer",
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "the child",
    }
    for event_type, summary in summaries.items():
        assert text(by_type[event_type].user_metadata.summary) == summary, event_type
    completed = by_type[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
    assert not completed.HasField("user_metadata")

    child = client.get_workflow_handle(f"{wf_id}-child")
    child_metadata = (await child.describe()).raw_description.execution_config.user_metadata
    assert (text(child_metadata.summary), text(child_metadata.details)) == (
        "the child",
        "the child's details",
    )


@workflow.defn
class Prioritised:
    """Runs one activity with its own priority; the rest of its priority is the run's."""

    @workflow.run
    async def run(self) -> str:
        from temporalio.common import Priority

        return await workflow.execute_activity(
            "echo_priority",
            start_to_close_timeout=timedelta(seconds=10),
            priority=Priority(priority_key=1),
        )


async def test_priority_and_fairness_are_stored_and_returned(client) -> None:
    """Temporal's priority: a run's priority key, fairness key and weight are on its started
    event and in describe; an activity's own priority is on its scheduled event, and the
    activity runs with it."""
    from temporalio import activity
    from temporalio.common import Priority

    @activity.defn(name="echo_priority")
    async def echo_priority() -> str:
        return str(activity.info().priority.priority_key)

    tq, wf_id = unique("tq"), unique("wf-priority")
    priority = Priority(priority_key=4, fairness_key="tenant-a", fairness_weight=2.5)
    async with new_worker(client, tq, workflows=[Prioritised], activities=[echo_priority]):
        handle = await client.start_workflow(
            Prioritised.run, id=wf_id, task_queue=tq, priority=priority
        )
        assert await handle.result() == "1"
    desc = await handle.describe()
    described = desc.raw_description.workflow_execution_info.priority
    assert (described.priority_key, described.fairness_key, described.fairness_weight) == (
        4,
        "tenant-a",
        2.5,
    )
    events = await history_events(handle)
    started = events[0].workflow_execution_started_event_attributes.priority
    assert (started.priority_key, started.fairness_key) == (4, "tenant-a")
    (scheduled,) = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled.activity_task_scheduled_event_attributes.priority.priority_key == 1


async def test_matching_hands_out_higher_priority_tasks_first(client) -> None:
    """Tasks waiting on a queue go to pollers by priority level (1 first, unset is 3),
    first in first out within a level."""
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
    from temporalio.common import Priority

    tq = unique("tq-priority-order")
    ids = []
    for n, key in enumerate([5, 0, 1, 3, 1]):
        wf_id = unique(f"wf-prio-{n}")
        ids.append(wf_id)
        priority = Priority(priority_key=key) if key else Priority.default
        await client.start_workflow("Quick", id=wf_id, task_queue=tq, priority=priority)
    polled = []
    for _ in ids:
        task = await client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=tq), identity="prio-poller"
            ),
            timeout=timedelta(seconds=20),
        )
        polled.append(ids.index(task.workflow_execution.workflow_id))
    # Priority 1 (starts 2 and 4, in start order), then unset and 3 (1 and 3), then 5.
    assert polled == [2, 4, 1, 3, 0]


@workflow.defn
class ManySleeps:
    @workflow.run
    async def run(self, n: int) -> int:
        await asyncio.gather(*(workflow.sleep(0.5) for _ in range(n)))
        return n


async def test_timers_due_together_wake_the_workflow_once(client) -> None:
    """Timers of one run that fall due together fire in one go, as Temporal's timer queue
    fires them: the workflow sees them all in one workflow task."""
    tq, wf_id = unique("tq"), unique("wf-sleeps")
    async with new_worker(client, tq, workflows=[ManySleeps]):
        handle = await client.start_workflow(ManySleeps.run, 8, id=wf_id, task_queue=tq)
        assert await handle.result() == 8
    types = [e.event_type for e in await history_events(handle)]
    assert types.count(EventType.EVENT_TYPE_TIMER_FIRED) == 8
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == 2, types
