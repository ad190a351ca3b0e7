"""Workflow updates: results, validators, failures, wait stages, dedup, update-with-start."""

from __future__ import annotations

from collections import defaultdict

import pytest
from temporalio import workflow
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from helpers import event_name, events_named, history_event_types, history_events, new_worker, unique

# Per-workflow-id count of `add` handler executions (workers run in this process).
HANDLER_RUNS: dict[str, int] = defaultdict(int)

UPDATE_EVENTS = ("WORKFLOW_EXECUTION_UPDATE_ACCEPTED", "WORKFLOW_EXECUTION_UPDATE_COMPLETED")


@workflow.defn
class ListWorkflow:
    """Collects items through updates until `finish`; returns them."""

    def __init__(self) -> None:
        self._items: list[str] = []
        self._released = False
        self._done = False

    @workflow.update
    def add(self, item: str) -> int:
        HANDLER_RUNS[workflow.info().workflow_id] += 1
        self._items.append(item)
        return len(self._items)

    @add.validator
    def validate_add(self, item: str) -> None:
        if not item:
            raise ApplicationError("empty items are not allowed", type="EmptyItem")

    @workflow.update
    async def add_when_released(self, item: str) -> str:
        await workflow.wait_condition(lambda: self._released)
        self._items.append(item)
        return f"added {item}"

    @workflow.update
    def explode(self) -> None:
        raise ApplicationError("handler failed", "detail", type="HandlerBroke")

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._done)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._items


async def _finish(handle) -> list[str]:
    await handle.signal(ListWorkflow.finish)
    return await handle.result()


async def test_execute_update_returns_result(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=unique("wf-update"), task_queue=tq)
        assert await handle.execute_update(ListWorkflow.add, "a", id="update-a") == 1
        assert await handle.execute_update(ListWorkflow.add, "b", id="update-b") == 2
        assert await _finish(handle) == ["a", "b"]

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 2
    assert names.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 2
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    accepted = events_named(events, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    completed = events_named(events, "WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    for update_id, acc, comp, result in zip(("update-a", "update-b"), accepted, completed, (b"1", b"2")):
        # Both are recorded by the completion of one workflow task, accepted first.
        assert names[acc.event_id - 2] == "WORKFLOW_TASK_COMPLETED"
        assert comp.event_id == acc.event_id + 1
        a = acc.workflow_execution_update_accepted_event_attributes
        assert a.protocol_instance_id == update_id
        assert a.accepted_request.meta.update_id == update_id
        assert a.accepted_request.input.name == "add"
        assert a.accepted_request_message_id == f"{update_id}/request"
        c = comp.workflow_execution_update_completed_event_attributes
        assert c.meta.update_id == update_id
        assert c.accepted_event_id == acc.event_id
        assert c.outcome.success.payloads[0].data == result


async def test_validator_rejection_leaves_no_update_events(client):
    tq = unique("tq")
    wf_id = unique("wf-update-reject")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=wf_id, task_queue=tq)
        assert await handle.execute_update(ListWorkflow.add, "first") == 1
        with pytest.raises(WorkflowUpdateFailedError) as exc_info:
            await handle.execute_update(ListWorkflow.add, "")
        cause = exc_info.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.message == "empty items are not allowed"
        assert cause.type == "EmptyItem"
        # An update naming no handler is rejected the same way (by the SDK's own validation).
        with pytest.raises(WorkflowUpdateFailedError) as exc_info:
            await handle.execute_update("no_such_update", "x")
        assert "no_such_update" in str(exc_info.value.cause)
        assert HANDLER_RUNS[wf_id] == 1
        # The workflow is unharmed and still takes updates.
        assert await handle.execute_update(ListWorkflow.add, "second") == 2
        assert await _finish(handle) == ["first", "second"]

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    # Only the two accepted updates left events; rejections are not recorded at all.
    assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 2
    assert names.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 2
    assert "WORKFLOW_TASK_FAILED" not in names
    inputs = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads[0].data
        for e in events_named(events, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    ]
    assert inputs == [b'"first"', b'"second"']


async def test_update_handler_failure_is_recorded(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=unique("wf-update-fail"), task_queue=tq)
        with pytest.raises(WorkflowUpdateFailedError) as exc_info:
            await handle.execute_update(ListWorkflow.explode, id="boom")
        cause = exc_info.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.message == "handler failed"
        assert cause.type == "HandlerBroke"
        assert list(cause.details) == ["detail"]
        # A failed update fails neither the workflow nor its task.
        assert await _finish(handle) == []

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert "WORKFLOW_TASK_FAILED" not in names
    (completed,) = events_named(events, "WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    outcome = completed.workflow_execution_update_completed_event_attributes.outcome
    assert outcome.HasField("failure")
    assert outcome.failure.message == "handler failed"
    assert outcome.failure.application_failure_info.type == "HandlerBroke"
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_start_update_waits_for_accepted_then_result(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=unique("wf-update-stage"), task_queue=tq)
        update = await handle.start_update(
            ListWorkflow.add_when_released, "late", id="slow-update", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        assert update.id == "slow-update"
        assert update.workflow_id == handle.id
        # Accepted but not completed: the handler is parked until `release`.
        names = await history_event_types(handle)
        assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 1
        assert "WORKFLOW_EXECUTION_UPDATE_COMPLETED" not in names
        await handle.signal(ListWorkflow.release)
        assert await update.result() == "added late"
        # A fresh handle for the same update id finds the outcome.
        assert await handle.get_update_handle("slow-update").result() == "added late"
        assert await _finish(handle) == ["late"]

    names = await history_event_types(handle)
    accepted = names.index("WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    signaled = names.index("WORKFLOW_EXECUTION_SIGNALED")
    completed = names.index("WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    assert accepted < signaled < completed
    assert names[completed - 1] == "WORKFLOW_TASK_COMPLETED"


async def test_same_update_id_is_deduplicated(client):
    tq = unique("tq")
    wf_id = unique("wf-update-dedup")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=wf_id, task_queue=tq)
        first = await handle.execute_update(ListWorkflow.add, "once", id="dedup-me")
        second = await handle.execute_update(ListWorkflow.add, "once", id="dedup-me")
        assert first == second == 1
        assert HANDLER_RUNS[wf_id] == 1
        assert await handle.get_update_handle("dedup-me").result() == 1
        assert await _finish(handle) == ["once"]
    names = await history_event_types(handle)
    assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 1
    assert names.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 1


async def test_update_on_closed_workflow_is_not_found(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        handle = await client.start_workflow(ListWorkflow.run, id=unique("wf-update-closed"), task_queue=tq)
        await _finish(handle)
        with pytest.raises(RPCError) as exc_info:
            await handle.execute_update(ListWorkflow.add, "too late")
        assert exc_info.value.status == RPCStatusCode.NOT_FOUND
    assert not any(n in UPDATE_EVENTS for n in await history_event_types(handle))


async def test_update_with_start_creates_then_reuses_workflow(client):
    tq, wf_id = unique("tq"), unique("wf-update-with-start")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        create = WithStartWorkflowOperation(
            ListWorkflow.run, id=wf_id, task_queue=tq, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        )
        assert await client.execute_update_with_start_workflow(
            ListWorkflow.add, "first", id="uws-1", start_workflow_operation=create
        ) == 1
        created = await create.workflow_handle()
        assert created.id == wf_id
        run_id = created.result_run_id
        assert run_id and created.first_execution_run_id == run_id

        # Started once; the update was delivered with the first workflow task.
        names = await history_event_types(created)
        assert names[:6] == [
            "WORKFLOW_EXECUTION_STARTED",
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        ]

        # The workflow exists now: USE_EXISTING sends the update to the running workflow.
        reuse = WithStartWorkflowOperation(
            ListWorkflow.run, id=wf_id, task_queue=tq, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        )
        assert await client.execute_update_with_start_workflow(
            ListWorkflow.add, "second", id="uws-2", start_workflow_operation=reuse
        ) == 2
        assert (await reuse.workflow_handle()).result_run_id == run_id

        # FAIL refuses, and neither the update nor a new run happens.
        refuse = WithStartWorkflowOperation(
            ListWorkflow.run, id=wf_id, task_queue=tq, id_conflict_policy=WorkflowIDConflictPolicy.FAIL
        )
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(
                ListWorkflow.add, "third", id="uws-3", start_workflow_operation=refuse
            )
        with pytest.raises(WorkflowAlreadyStartedError):
            await refuse.workflow_handle()

        assert await _finish(created) == ["first", "second"]

    names = await history_event_types(created)
    assert names.count("WORKFLOW_EXECUTION_STARTED") == 1
    assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 2
    assert names.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 2
    assert (await client.get_workflow_handle(wf_id).describe()).run_id == run_id


async def test_start_update_with_start_waits_for_accepted(client):
    tq, wf_id = unique("tq"), unique("wf-start-update-with-start")
    async with new_worker(client, tq, workflows=[ListWorkflow]):
        op = WithStartWorkflowOperation(
            ListWorkflow.run, id=wf_id, task_queue=tq, id_conflict_policy=WorkflowIDConflictPolicy.FAIL
        )
        update = await client.start_update_with_start_workflow(
            ListWorkflow.add_when_released,
            "parked",
            id="uws-slow",
            start_workflow_operation=op,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        handle = await op.workflow_handle()
        names = await history_event_types(handle)
        assert names[:5] == [
            "WORKFLOW_EXECUTION_STARTED",
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        ]
        assert "WORKFLOW_EXECUTION_UPDATE_COMPLETED" not in names
        await handle.signal(ListWorkflow.release)
        assert await update.result() == "added parked"
        assert await _finish(handle) == ["parked"]
    names = await history_event_types(handle)
    assert names.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 1
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
