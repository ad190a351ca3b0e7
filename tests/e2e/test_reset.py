"""ResetWorkflowExecution: a new run from an earlier workflow task, the old run terminated,
and signals after the reset point reapplied (or not)."""

from __future__ import annotations

import uuid

from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus

from helpers import event_name, events_named, history_event_types, history_events, new_worker, unique, wait_for_event


@workflow.defn
class CollectWorkflow:
    """Completes with the first `count` items it was signalled."""

    def __init__(self) -> None:
        self._items: list[str] = []

    @workflow.signal
    def item(self, value: str) -> None:
        self._items.append(value)

    @workflow.run
    async def run(self, count: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self._items) >= count)
        return self._items[:count]


async def _reset(client, wf_id: str, run_id: str, event_id: int, reason: str, **kwargs) -> str:
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=wf_id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=event_id,
            request_id=str(uuid.uuid4()),
            **kwargs,
        )
    )
    assert response.run_id and response.run_id != run_id
    return response.run_id


async def _two_signals_after_first_task(client, tq: str):
    """A CollectWorkflow(3) whose first workflow task completed before it got items a and b."""
    handle = await client.start_workflow(CollectWorkflow.run, 3, id=unique("wf-reset"), task_queue=tq)
    await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED")
    await handle.signal(CollectWorkflow.item, "a")
    await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED", count=2)
    await handle.signal(CollectWorkflow.item, "b")
    await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED", count=3)
    names = await history_event_types(handle)
    assert names == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
    ]
    return handle


async def test_reset_reapplies_signals(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CollectWorkflow]):
        handle = await _two_signals_after_first_task(client, tq)
        wf_id, old_run_id = handle.id, handle.result_run_id
        new_run_id = await _reset(client, wf_id, old_run_id, 4, "testing reset")

        old = client.get_workflow_handle(wf_id, run_id=old_run_id)
        old_events = await history_events(old)
        assert event_name(old_events[-1].event_type) == "WORKFLOW_EXECUTION_TERMINATED"
        assert len(old_events) == 13
        assert old_events[-1].workflow_execution_terminated_event_attributes.reason == "testing reset"
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED

        # The workflow id now resolves to the new run, which got a and b again.
        current = client.get_workflow_handle(wf_id)
        assert (await current.describe()).run_id == new_run_id
        new = client.get_workflow_handle(wf_id, run_id=new_run_id)
        await wait_for_event(new, "WORKFLOW_TASK_COMPLETED")
        await new.signal(CollectWorkflow.item, "c")
        assert await new.result() == ["a", "b", "c"]

    events = await history_events(new)
    names = [event_name(e.event_type) for e in events]
    # Events up to the reset point are copied, the reset workflow task is failed, and the
    # signals that came after the reset point are appended again.
    assert names == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    failed = events[3].workflow_task_failed_event_attributes
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    assert failed.base_run_id == old_run_id
    assert failed.new_run_id == new_run_id
    assert failed.failure.message == "testing reset"
    assert failed.scheduled_event_id == 2 and failed.started_event_id == 3
    signaled = [e.workflow_execution_signaled_event_attributes for e in events_named(events, "WORKFLOW_EXECUTION_SIGNALED")]
    assert [s.input.payloads[0].data for s in signaled] == [b'"a"', b'"b"', b'"c"']
    started = events[0].workflow_execution_started_event_attributes
    assert started.first_execution_run_id == old_run_id
    assert started.input.payloads[0].data == b"3"
    desc = await new.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.raw_description.workflow_execution_info.first_run_id == old_run_id


async def test_reset_without_reapply(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CollectWorkflow]):
        handle = await _two_signals_after_first_task(client, tq)
        new_run_id = await _reset(
            client, handle.id, handle.result_run_id, 4, "no reapply",
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_NONE,
        )
        new = client.get_workflow_handle(handle.id, run_id=new_run_id)
        events = await wait_for_event(new, "WORKFLOW_TASK_COMPLETED")
        assert "WORKFLOW_EXECUTION_SIGNALED" not in [event_name(e.event_type) for e in events]
        for value in ("x", "y", "z"):
            await new.signal(CollectWorkflow.item, value)
        assert await new.result() == ["x", "y", "z"]
    names = await history_event_types(new)
    assert names[:7] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
    ]


async def test_reset_completed_workflow(client):
    """Resetting a closed run starts a new run from the reset point; the old run keeps its
    outcome."""
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[CollectWorkflow]):
        handle = await client.start_workflow(CollectWorkflow.run, 1, id=unique("wf-reset-closed"), task_queue=tq)
        await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED")
        await handle.signal(CollectWorkflow.item, "only")
        assert await handle.result() == ["only"]
        new_run_id = await _reset(client, handle.id, handle.result_run_id, 4, "again")
        new = client.get_workflow_handle(handle.id, run_id=new_run_id)
        # The signal after the reset point is reapplied, so the new run completes by itself.
        assert await new.result() == ["only"]
    old = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    assert (await old.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert (await history_event_types(old))[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert (await client.get_workflow_handle(handle.id).describe()).run_id == new_run_id
