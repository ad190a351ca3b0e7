"""Child workflows: results, failures, timeouts, termination, cancellation, parent close
policies, and a child id that is already in use."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ParentClosePolicy as ParentClosePolicyProto
from temporalio.api.enums.v1 import RetryState, StartChildWorkflowExecutionFailedCause
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ParentClosePolicy

from helpers import (
    event_name,
    events_named,
    history_event_types,
    history_events,
    new_worker,
    unique,
    wait_for_event,
    wait_for_status,
)

ALREADY_EXISTS = StartChildWorkflowExecutionFailedCause.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS


@workflow.defn
class ChildWorkflow:
    """mode: "echo:<text>" returns text after a `release` signal, "fail" fails, "block" waits forever."""

    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            raise ApplicationError("child broke", "why", type="ChildBroke", non_retryable=True)
        if mode.startswith("echo:"):
            await workflow.wait_condition(lambda: self._released)
            return mode.removeprefix("echo:").upper()
        await workflow.wait_condition(lambda: False)
        return "unreachable"


def describe_child_error(err: ChildWorkflowError) -> dict:
    cause = err.cause
    return {
        "error": type(err).__name__,
        "cause": type(cause).__name__,
        "message": getattr(cause, "message", str(cause)),
        "retry_state": int(err.retry_state) if err.retry_state is not None else None,
        "workflow_id": err.workflow_id,
        "run_id": err.run_id,
        "workflow_type": err.workflow_type,
        "initiated_event_id": err.initiated_event_id,
        "started_event_id": err.started_event_id,
    }


@workflow.defn
class ParentWorkflow:
    """Runs one child to its end; reports the result or the ChildWorkflowError."""

    @workflow.run
    async def run(self, child_id: str, mode: str, timeout_s: float = 0, catch: bool = True) -> dict:
        kwargs = {}
        if timeout_s:
            kwargs["execution_timeout"] = timedelta(seconds=timeout_s)
        try:
            result = await workflow.execute_child_workflow(ChildWorkflow.run, mode, id=child_id, **kwargs)
            return {"result": result}
        except ChildWorkflowError as err:
            if not catch:
                raise
            return describe_child_error(err)
        except WorkflowAlreadyStartedError as err:
            return {"error": type(err).__name__, "workflow_id": err.workflow_id, "workflow_type": err.workflow_type}


@workflow.defn
class CancellingParentWorkflow:
    """Starts a blocking child, waits until it runs, then cancels it."""

    @workflow.run
    async def run(self, child_id: str) -> dict:
        child = await workflow.start_child_workflow(ChildWorkflow.run, "block", id=child_id)
        child.cancel()
        try:
            await child
        except ChildWorkflowError as err:
            return describe_child_error(err)
        return {"error": None}


@workflow.defn
class AbandoningParentWorkflow:
    """Starts a blocking child with the given parent close policy and completes right away."""

    @workflow.run
    async def run(self, child_id: str, policy: str) -> str:
        child = await workflow.start_child_workflow(
            ChildWorkflow.run, "block", id=child_id, parent_close_policy=ParentClosePolicy[policy]
        )
        return child.first_execution_run_id or ""


@workflow.defn
class TreeWorkflow:
    """Starts a child of itself `depth` times and returns the deepest child's workflow id."""

    @workflow.run
    async def run(self, depth: int) -> str:
        if depth == 0:
            return workflow.info().workflow_id
        return await workflow.execute_child_workflow(
            TreeWorkflow.run, depth - 1, id=f"{workflow.info().workflow_id}-child"
        )


CHILD_WORKFLOWS = [
    ChildWorkflow,
    ParentWorkflow,
    CancellingParentWorkflow,
    AbandoningParentWorkflow,
    TreeWorkflow,
]


async def test_every_descendant_names_the_top_of_its_tree_as_its_root(client):
    """Temporal's root execution: a grandchild's root is its grandparent, not its parent;
    a workflow without a parent is its own root (describe and the started event)."""
    tq, top_id = unique("tq"), unique("wf-tree")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        top = await client.start_workflow(TreeWorkflow.run, 2, id=top_id, task_queue=tq)
        grandchild_id = await top.result()
    assert grandchild_id == f"{top_id}-child-child"
    top_desc = await top.describe()
    root = top_desc.raw_description.workflow_execution_info.root_execution
    assert (root.workflow_id, root.run_id) == (top_id, top.result_run_id)
    for child_id in (f"{top_id}-child", grandchild_id):
        handle = client.get_workflow_handle(child_id)
        info = (await handle.describe()).raw_description.workflow_execution_info
        assert (info.root_execution.workflow_id, info.root_execution.run_id) == (
            top_id,
            top.result_run_id,
        ), child_id
        started = (await history_events(handle))[0].workflow_execution_started_event_attributes
        assert started.root_workflow_execution.workflow_id == top_id, child_id
        assert started.root_workflow_execution.run_id == top.result_run_id, child_id


async def test_child_workflow_result_and_history(client):
    tq, parent_id, child_id = unique("tq"), unique("wf-parent"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            ParentWorkflow.run, args=[child_id, "echo:hello"], id=parent_id, task_queue=tq
        )
        # Let the parent record the child's start before the child may finish, so the
        # parent's history has a fixed shape.
        await wait_for_event(parent, "WORKFLOW_TASK_COMPLETED", count=2)
        child = client.get_workflow_handle(child_id)
        await child.signal(ChildWorkflow.release)
        assert await parent.result() == {"result": "HELLO"}

    events = await history_events(parent)
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
        "CHILD_WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "CHILD_WORKFLOW_EXECUTION_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    initiated = events[4].start_child_workflow_execution_initiated_event_attributes
    assert initiated.workflow_id == child_id
    assert initiated.workflow_type.name == "ChildWorkflow"
    assert initiated.task_queue.name == tq
    assert initiated.workflow_task_completed_event_id == 4
    assert initiated.parent_close_policy == ParentClosePolicyProto.PARENT_CLOSE_POLICY_TERMINATE
    started = events[5].child_workflow_execution_started_event_attributes
    assert started.initiated_event_id == 5
    assert started.workflow_execution.workflow_id == child_id
    assert started.workflow_type.name == "ChildWorkflow"
    completed = events[9].child_workflow_execution_completed_event_attributes
    assert completed.initiated_event_id == 5 and completed.started_event_id == 6
    assert completed.workflow_execution.run_id == started.workflow_execution.run_id
    assert completed.result.payloads[0].data == b'"HELLO"'

    # The child knows its parent.
    child_desc = await client.get_workflow_handle(child_id).describe()
    assert child_desc.status == WorkflowExecutionStatus.COMPLETED
    assert child_desc.run_id == started.workflow_execution.run_id
    assert child_desc.parent_id == parent_id
    assert child_desc.parent_run_id == parent.result_run_id
    child_started = (await history_events(client.get_workflow_handle(child_id)))[0]
    attrs = child_started.workflow_execution_started_event_attributes
    assert attrs.parent_workflow_execution.workflow_id == parent_id
    assert attrs.parent_workflow_execution.run_id == parent.result_run_id
    assert attrs.parent_initiated_event_id == 5


async def test_child_failure_propagates_to_parent(client):
    tq, child_id = unique("tq"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            ParentWorkflow.run, args=[child_id, "fail", 0, False], id=unique("wf-parent"), task_queue=tq
        )
        with pytest.raises(WorkflowFailureError) as exc_info:
            await parent.result()
    child_err = exc_info.value.cause
    assert isinstance(child_err, ChildWorkflowError)
    assert child_err.workflow_id == child_id
    assert child_err.workflow_type == "ChildWorkflow"
    assert child_err.retry_state == RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET
    cause = child_err.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "child broke"
    assert cause.type == "ChildBroke"
    assert list(cause.details) == ["why"]

    events = await history_events(parent)
    names = [event_name(e.event_type) for e in events]
    assert names.index("START_CHILD_WORKFLOW_EXECUTION_INITIATED") < names.index(
        "CHILD_WORKFLOW_EXECUTION_STARTED"
    ) < names.index("CHILD_WORKFLOW_EXECUTION_FAILED")
    assert names[-1] == "WORKFLOW_EXECUTION_FAILED"
    (failed,) = events_named(events, "CHILD_WORKFLOW_EXECUTION_FAILED")
    attrs = failed.child_workflow_execution_failed_event_attributes
    assert attrs.failure.message == "child broke"
    assert attrs.failure.application_failure_info.type == "ChildBroke"
    assert attrs.retry_state == RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET
    assert attrs.workflow_execution.workflow_id == child_id
    assert (await history_event_types(client.get_workflow_handle(child_id)))[-1] == "WORKFLOW_EXECUTION_FAILED"


async def test_child_timeout(client):
    tq, child_id = unique("tq"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            ParentWorkflow.run, args=[child_id, "block", 1.0], id=unique("wf-parent"), task_queue=tq
        )
        outcome = await parent.result()
    assert outcome["cause"] == TimeoutError.__name__
    assert outcome["retry_state"] == RetryState.RETRY_STATE_TIMEOUT
    assert outcome["workflow_id"] == child_id

    events = await history_events(parent)
    (timed_out,) = events_named(events, "CHILD_WORKFLOW_EXECUTION_TIMED_OUT")
    attrs = timed_out.child_workflow_execution_timed_out_event_attributes
    assert attrs.retry_state == RetryState.RETRY_STATE_TIMEOUT
    assert attrs.workflow_execution.workflow_id == child_id
    assert attrs.workflow_type.name == "ChildWorkflow"
    assert attrs.initiated_event_id == outcome["initiated_event_id"]
    assert attrs.started_event_id == outcome["started_event_id"]
    child = client.get_workflow_handle(child_id)
    assert (await history_event_types(child))[-1] == "WORKFLOW_EXECUTION_TIMED_OUT"
    assert (await child.describe()).status == WorkflowExecutionStatus.TIMED_OUT


async def test_child_terminated_from_client(client):
    tq, child_id = unique("tq"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            ParentWorkflow.run, args=[child_id, "block"], id=unique("wf-parent"), task_queue=tq
        )
        await wait_for_event(parent, "CHILD_WORKFLOW_EXECUTION_STARTED")
        await client.get_workflow_handle(child_id).terminate(reason="stop the child")
        outcome = await parent.result()
    assert outcome["cause"] == TerminatedError.__name__
    assert outcome["workflow_id"] == child_id

    names = await history_event_types(parent)
    assert "CHILD_WORKFLOW_EXECUTION_TERMINATED" in names
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert (await history_event_types(client.get_workflow_handle(child_id)))[-1] == "WORKFLOW_EXECUTION_TERMINATED"


async def test_child_cancelled_by_parent(client):
    tq, child_id = unique("tq"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            CancellingParentWorkflow.run, child_id, id=unique("wf-parent"), task_queue=tq
        )
        outcome = await parent.result()
    assert outcome["cause"] == CancelledError.__name__
    assert outcome["workflow_id"] == child_id

    events = await history_events(parent)
    names = [event_name(e.event_type) for e in events]
    order = [
        "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
        "CHILD_WORKFLOW_EXECUTION_STARTED",
        "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
        "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED",
        "CHILD_WORKFLOW_EXECUTION_CANCELED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    assert [n for n in names if n in order] == order
    (req,) = events_named(events, "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED")
    req_attrs = req.request_cancel_external_workflow_execution_initiated_event_attributes
    assert req_attrs.child_workflow_only
    assert req_attrs.workflow_execution.workflow_id == child_id

    child_events = await history_events(client.get_workflow_handle(child_id))
    child_names = [event_name(e.event_type) for e in child_events]
    assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in child_names
    assert child_names[-1] == "WORKFLOW_EXECUTION_CANCELED"
    (requested,) = events_named(child_events, "WORKFLOW_EXECUTION_CANCEL_REQUESTED")
    ext = requested.workflow_execution_cancel_requested_event_attributes.external_workflow_execution
    assert ext.workflow_id == parent.id and ext.run_id == parent.result_run_id


@pytest.mark.parametrize(
    "policy, child_status, child_last_event",
    [
        ("TERMINATE", WorkflowExecutionStatus.TERMINATED, "WORKFLOW_EXECUTION_TERMINATED"),
        ("REQUEST_CANCEL", WorkflowExecutionStatus.CANCELED, "WORKFLOW_EXECUTION_CANCELED"),
        ("ABANDON", WorkflowExecutionStatus.RUNNING, None),
    ],
)
async def test_parent_close_policy(client, policy, child_status, child_last_event):
    tq, parent_id, child_id = unique("tq"), unique("wf-parent"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        parent = await client.start_workflow(
            AbandoningParentWorkflow.run, args=[child_id, policy], id=parent_id, task_queue=tq
        )
        child_run_id = await parent.result()
        child = client.get_workflow_handle(child_id, run_id=child_run_id)
        if policy == "ABANDON":
            # Nothing is supposed to happen; give a wrongly applied policy a moment to show.
            await asyncio.sleep(0.5)
        await wait_for_status(child, child_status)
        child_events = await history_events(child)
        child_names = [event_name(e.event_type) for e in child_events]
        if policy == "ABANDON":
            # Nothing happened to the child; it outlives its parent.
            assert not any(n.startswith("WORKFLOW_EXECUTION_CANCEL") or n.endswith("TERMINATED") for n in child_names)
            await child.terminate(reason="cleanup")
        else:
            assert child_names[-1] == child_last_event
        if policy == "TERMINATE":
            attrs = child_events[-1].workflow_execution_terminated_event_attributes
            assert attrs.reason == "by parent close policy"
        if policy == "REQUEST_CANCEL":
            (requested,) = events_named(child_events, "WORKFLOW_EXECUTION_CANCEL_REQUESTED")
            ext = requested.workflow_execution_cancel_requested_event_attributes.external_workflow_execution
            assert ext.workflow_id == parent_id and ext.run_id == parent.result_run_id

    parent_events = await history_events(parent)
    assert [event_name(e.event_type) for e in parent_events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
        "CHILD_WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    initiated = parent_events[4].start_child_workflow_execution_initiated_event_attributes
    assert initiated.parent_close_policy == ParentClosePolicyProto.Value(f"PARENT_CLOSE_POLICY_{policy}")


async def test_child_id_already_running(client):
    tq, child_id = unique("tq"), unique("wf-child")
    async with new_worker(client, tq, workflows=CHILD_WORKFLOWS):
        squatter = await client.start_workflow(ChildWorkflow.run, "block", id=child_id, task_queue=tq)
        parent = await client.start_workflow(
            ParentWorkflow.run, args=[child_id, "echo:x"], id=unique("wf-parent"), task_queue=tq
        )
        outcome = await parent.result()
        assert outcome == {
            "error": WorkflowAlreadyStartedError.__name__,
            "workflow_id": child_id,
            "workflow_type": "ChildWorkflow",
        }
        # The running workflow with that id is left alone.
        assert (await squatter.describe()).status == WorkflowExecutionStatus.RUNNING
        await squatter.terminate(reason="cleanup")

    events = await history_events(parent)
    names = [event_name(e.event_type) for e in events]
    assert names[4:6] == ["START_CHILD_WORKFLOW_EXECUTION_INITIATED", "START_CHILD_WORKFLOW_EXECUTION_FAILED"]
    assert "CHILD_WORKFLOW_EXECUTION_STARTED" not in names
    failed = events[5].start_child_workflow_execution_failed_event_attributes
    assert failed.cause == ALREADY_EXISTS
    assert failed.workflow_id == child_id
    assert failed.workflow_type.name == "ChildWorkflow"
    assert failed.initiated_event_id == 5
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
