"""Workflows acting on other workflows: signal and cancel an external workflow."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.api.enums.v1 import (
    CancelExternalWorkflowExecutionFailedCause,
    SignalExternalWorkflowExecutionFailedCause,
)
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from helpers import event_name, events_named, history_events, new_worker, unique, wait_for_event

SIGNAL_TARGET_NOT_FOUND = SignalExternalWorkflowExecutionFailedCause.Value(
    "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
)
CANCEL_TARGET_NOT_FOUND = CancelExternalWorkflowExecutionFailedCause.Value(
    "CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
)


@workflow.defn
class TargetWorkflow:
    """Waits for a `poke` signal; reports a cancellation instead if it gets one."""

    def __init__(self) -> None:
        self._pokes: list[str] = []

    @workflow.signal
    def poke(self, text: str) -> None:
        self._pokes.append(text)

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: bool(self._pokes))
        except asyncio.CancelledError:
            return "target saw cancellation"
        return "poked: " + ", ".join(self._pokes)


@workflow.defn
class ActorWorkflow:
    """Signals or cancels the workflow `target_id`; reports the error it got, if any."""

    @workflow.run
    async def run(self, action: str, target_id: str) -> str:
        target = workflow.get_external_workflow_handle(target_id)
        try:
            if action == "signal":
                await target.signal(TargetWorkflow.poke, "from another workflow")
            else:
                await target.cancel()
        except ApplicationError as err:
            return f"failed: {err.type}: {err.message}"
        return f"{action} delivered"


WORKFLOWS = [TargetWorkflow, ActorWorkflow]


async def test_signal_external_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        target = await client.start_workflow(TargetWorkflow.run, id=unique("wf-target"), task_queue=tq)
        actor = await client.start_workflow(
            ActorWorkflow.run, args=["signal", target.id], id=unique("wf-actor"), task_queue=tq
        )
        assert await actor.result() == "signal delivered"
        assert await target.result() == "poked: from another workflow"

    events = await history_events(actor)
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
        "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    initiated = events[4].signal_external_workflow_execution_initiated_event_attributes
    assert initiated.workflow_execution.workflow_id == target.id
    assert initiated.signal_name == "poke"
    assert initiated.input.payloads[0].data == b'"from another workflow"'
    assert initiated.workflow_task_completed_event_id == 4
    signaled = events[5].external_workflow_execution_signaled_event_attributes
    assert signaled.initiated_event_id == 5
    assert signaled.workflow_execution.workflow_id == target.id

    target_events = await history_events(target)
    (received,) = events_named(target_events, "WORKFLOW_EXECUTION_SIGNALED")
    attrs = received.workflow_execution_signaled_event_attributes
    assert attrs.signal_name == "poke"
    assert attrs.input.payloads[0].data == b'"from another workflow"'
    assert attrs.external_workflow_execution.workflow_id == actor.id
    assert attrs.external_workflow_execution.run_id == actor.result_run_id


async def test_signal_missing_external_workflow_fails_in_workflow(client):
    tq, missing = unique("tq"), unique("wf-does-not-exist")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        actor = await client.start_workflow(
            ActorWorkflow.run, args=["signal", missing], id=unique("wf-actor"), task_queue=tq
        )
        outcome = await actor.result()
    assert outcome.startswith("failed: ExternalWorkflowExecutionNotFound: ")

    events = await history_events(actor)
    names = [event_name(e.event_type) for e in events]
    assert names[4:6] == ["SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED", "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED"]
    assert "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" not in names
    failed = events[5].signal_external_workflow_execution_failed_event_attributes
    assert failed.cause == SIGNAL_TARGET_NOT_FOUND
    assert failed.initiated_event_id == 5
    assert failed.workflow_execution.workflow_id == missing
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_signal_closed_external_workflow_fails_in_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        target = await client.start_workflow(TargetWorkflow.run, id=unique("wf-target"), task_queue=tq)
        await target.signal(TargetWorkflow.poke, "by the client")
        await target.result()
        actor = await client.start_workflow(
            ActorWorkflow.run, args=["signal", target.id], id=unique("wf-actor"), task_queue=tq
        )
        assert (await actor.result()).startswith("failed: ExternalWorkflowExecutionNotFound: ")
    (failed,) = events_named(await history_events(actor), "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED")
    assert failed.signal_external_workflow_execution_failed_event_attributes.cause == SIGNAL_TARGET_NOT_FOUND


async def test_cancel_external_workflow(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        target = await client.start_workflow(TargetWorkflow.run, id=unique("wf-target"), task_queue=tq)
        await wait_for_event(target, "WORKFLOW_TASK_COMPLETED")
        actor = await client.start_workflow(
            ActorWorkflow.run, args=["cancel", target.id], id=unique("wf-actor"), task_queue=tq
        )
        assert await actor.result() == "cancel delivered"
        # The target handled the cancellation itself (and chose to complete).
        assert await target.result() == "target saw cancellation"

    events = await history_events(actor)
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
        "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    initiated = events[4].request_cancel_external_workflow_execution_initiated_event_attributes
    assert initiated.workflow_execution.workflow_id == target.id
    assert not initiated.child_workflow_only
    requested = events[5].external_workflow_execution_cancel_requested_event_attributes
    assert requested.initiated_event_id == 5
    assert requested.workflow_execution.workflow_id == target.id

    target_events = await history_events(target)
    target_names = [event_name(e.event_type) for e in target_events]
    assert target_names == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    attrs = target_events[4].workflow_execution_cancel_requested_event_attributes
    assert attrs.external_workflow_execution.workflow_id == actor.id
    assert attrs.external_workflow_execution.run_id == actor.result_run_id
    assert attrs.external_initiated_event_id == 5
    assert (await target.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_cancel_missing_external_workflow_fails_in_workflow(client):
    tq, missing = unique("tq"), unique("wf-does-not-exist")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        actor = await client.start_workflow(
            ActorWorkflow.run, args=["cancel", missing], id=unique("wf-actor"), task_queue=tq
        )
        assert (await actor.result()).startswith("failed: ExternalWorkflowExecutionNotFound: ")

    events = await history_events(actor)
    names = [event_name(e.event_type) for e in events]
    assert names[4:6] == [
        "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
        "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
    ]
    failed = events[5].request_cancel_external_workflow_execution_failed_event_attributes
    assert failed.cause == CANCEL_TARGET_NOT_FOUND
    assert failed.initiated_event_id == 5
    assert failed.workflow_execution.workflow_id == missing
