"""Workflow id reuse and conflict policies, and request-id idempotency of start, signal,
cancel and terminate."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payloads, WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    RequestCancelWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from helpers import (
    event_name,
    events_named,
    history_event_types,
    history_events,
    new_worker,
    unique,
    wait_for_event,
)


@workflow.defn
class OutcomeWorkflow:
    """mode "complete" completes, "fail" fails, anything else blocks until cancelled."""

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "complete":
            return "completed"
        if mode == "fail":
            raise ApplicationError("failed on purpose", non_retryable=True)
        await workflow.wait_condition(lambda: False)
        return "unreachable"


@workflow.defn
class StubbornWorkflow:
    """Survives cancellation: it notes the request and completes only on `finish`."""

    def __init__(self) -> None:
        self._done = False

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.signal
    def ping(self) -> None:
        pass

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self._done)
        except asyncio.CancelledError:
            await workflow.wait_condition(lambda: self._done)
            return "finished after cancellation"
        return "finished"


WORKFLOWS = [OutcomeWorkflow, StubbornWorkflow]

ALLOW, REJECT = "allowed", "rejected"
# What each reuse policy does once the previous run closed the given way.
REUSE_AFTER_CLOSE = {
    WorkflowIDReusePolicy.ALLOW_DUPLICATE: dict(completed=ALLOW, failed=ALLOW, terminated=ALLOW, canceled=ALLOW),
    WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY: dict(
        completed=REJECT, failed=ALLOW, terminated=ALLOW, canceled=ALLOW
    ),
    WorkflowIDReusePolicy.REJECT_DUPLICATE: dict(completed=REJECT, failed=REJECT, terminated=REJECT, canceled=REJECT),
    WorkflowIDReusePolicy.TERMINATE_IF_RUNNING: dict(completed=ALLOW, failed=ALLOW, terminated=ALLOW, canceled=ALLOW),
}


async def _closed_run(client, tq: str, wf_id: str, outcome: str) -> str:
    """Start a run of `wf_id` and close it the `outcome` way; returns its run id."""
    mode = {"completed": "complete", "failed": "fail"}.get(outcome, "block")
    handle = await client.start_workflow(OutcomeWorkflow.run, mode, id=wf_id, task_queue=tq)
    if outcome == "terminated":
        await handle.terminate(reason="closing it")
    elif outcome == "canceled":
        await handle.cancel()
    if outcome == "completed":
        await handle.result()
    else:
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    return handle.result_run_id


@pytest.mark.parametrize("outcome", ["completed", "failed", "terminated", "canceled"])
async def test_id_reuse_policy_after_close(client, outcome):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        ids = {policy: unique(f"wf-reuse-{outcome}") for policy in REUSE_AFTER_CLOSE}
        old_runs = dict(
            zip(ids, await asyncio.gather(*(_closed_run(client, tq, wf_id, outcome) for wf_id in ids.values())))
        )
        for policy, wf_id in ids.items():
            expected = REUSE_AFTER_CLOSE[policy][outcome]
            if expected == REJECT:
                with pytest.raises(WorkflowAlreadyStartedError) as exc_info:
                    await client.start_workflow(
                        OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq, id_reuse_policy=policy
                    )
                assert exc_info.value.workflow_id == wf_id
                assert exc_info.value.run_id == old_runs[policy], policy
                assert (await client.get_workflow_handle(wf_id).describe()).run_id == old_runs[policy]
            else:
                new = await client.start_workflow(
                    OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq, id_reuse_policy=policy
                )
                assert new.result_run_id != old_runs[policy], policy
                assert await new.result() == "completed"
                assert (await client.get_workflow_handle(wf_id).describe()).run_id == new.result_run_id


@pytest.mark.parametrize(
    "policy",
    [
        WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        WorkflowIDReusePolicy.REJECT_DUPLICATE,
    ],
)
async def test_id_reuse_policy_while_running_rejects(client, policy):
    tq, wf_id = unique("tq"), unique("wf-reuse-running")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        running = await client.start_workflow(OutcomeWorkflow.run, "block", id=wf_id, task_queue=tq)
        with pytest.raises(WorkflowAlreadyStartedError) as exc_info:
            await client.start_workflow(OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq, id_reuse_policy=policy)
        assert exc_info.value.run_id == running.result_run_id
        desc = await client.get_workflow_handle(wf_id).describe()
        assert desc.run_id == running.result_run_id and desc.status == WorkflowExecutionStatus.RUNNING
        await running.terminate(reason="cleanup")


async def _terminated_by_new_run(client, tq: str, *, id_reuse_policy=None, id_conflict_policy=None):
    wf_id = unique("wf-replace-running")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        old = await client.start_workflow(OutcomeWorkflow.run, "block", id=wf_id, task_queue=tq)
        await wait_for_event(old, "WORKFLOW_TASK_COMPLETED")
        kwargs = {}
        if id_reuse_policy is not None:
            kwargs["id_reuse_policy"] = id_reuse_policy
        if id_conflict_policy is not None:
            kwargs["id_conflict_policy"] = id_conflict_policy
        new = await client.start_workflow(OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq, **kwargs)
        assert new.result_run_id != old.result_run_id
        assert await new.result() == "completed"
    old_run = client.get_workflow_handle(wf_id, run_id=old.result_run_id)
    assert (await old_run.describe()).status == WorkflowExecutionStatus.TERMINATED
    events = await history_events(old_run)
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_TERMINATED",
    ]
    attrs = events[-1].workflow_execution_terminated_event_attributes
    assert attrs.reason == "TerminateIfRunning WorkflowIdReusePolicy"
    assert new.result_run_id in attrs.details.payloads[0].data.decode()
    # The new run is a fresh chain, not a continuation.
    started = (await history_events(new))[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id == ""
    assert started.first_execution_run_id == new.result_run_id


async def test_id_reuse_policy_terminate_if_running(client):
    await _terminated_by_new_run(client, unique("tq"), id_reuse_policy=WorkflowIDReusePolicy.TERMINATE_IF_RUNNING)


async def test_id_conflict_policy_terminate_existing(client):
    await _terminated_by_new_run(
        client, unique("tq"), id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING
    )


async def test_id_conflict_policy_fail(client):
    tq, wf_id = unique("tq"), unique("wf-conflict-fail")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        running = await client.start_workflow(OutcomeWorkflow.run, "block", id=wf_id, task_queue=tq)
        with pytest.raises(WorkflowAlreadyStartedError) as exc_info:
            await client.start_workflow(
                OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        assert exc_info.value.run_id == running.result_run_id
        await running.terminate(reason="cleanup")


async def test_id_conflict_policy_use_existing(client):
    tq, wf_id = unique("tq"), unique("wf-conflict-use-existing")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        running = await client.start_workflow(OutcomeWorkflow.run, "block", id=wf_id, task_queue=tq)
        again = await client.start_workflow(
            OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert again.result_run_id == running.result_run_id
        names = await history_event_types(running)
        assert names.count("WORKFLOW_EXECUTION_STARTED") == 1
        assert "WORKFLOW_EXECUTION_TERMINATED" not in names
        assert (await running.describe()).status == WorkflowExecutionStatus.RUNNING
        await running.terminate(reason="cleanup")
        # With nothing running, USE_EXISTING simply starts a new run.
        fresh = await client.start_workflow(
            OutcomeWorkflow.run, "complete", id=wf_id, task_queue=tq,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert fresh.result_run_id != running.result_run_id
        assert await fresh.result() == "completed"


async def test_terminate_if_running_with_conflict_policy_is_invalid(client):
    with pytest.raises(RPCError) as exc_info:
        await client.start_workflow(
            OutcomeWorkflow.run, "complete", id=unique("wf-invalid-policies"), task_queue=unique("tq"),
            id_reuse_policy=WorkflowIDReusePolicy.TERMINATE_IF_RUNNING,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    assert exc_info.value.status == RPCStatusCode.INVALID_ARGUMENT


def _start_request(client, wf_id: str, tq: str, request_id: str) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_id=wf_id,
        workflow_type=WorkflowType(name="OutcomeWorkflow"),
        task_queue=TaskQueue(name=tq),
        input=Payloads(payloads=client.data_converter.payload_converter.to_payloads(["block"])),
        identity="policies-test",
        request_id=request_id,
    )


async def test_start_request_id_is_idempotent(client):
    tq, wf_id = unique("tq"), unique("wf-start-request-id")
    request_id = str(uuid.uuid4())
    first = await client.workflow_service.start_workflow_execution(_start_request(client, wf_id, tq, request_id))
    second = await client.workflow_service.start_workflow_execution(_start_request(client, wf_id, tq, request_id))
    assert first.run_id and second.run_id == first.run_id
    # Another request id for the same running workflow is a conflict.
    with pytest.raises(RPCError) as exc_info:
        await client.workflow_service.start_workflow_execution(
            _start_request(client, wf_id, tq, str(uuid.uuid4()))
        )
    assert exc_info.value.status == RPCStatusCode.ALREADY_EXISTS
    handle = client.get_workflow_handle(wf_id)
    assert await history_event_types(handle) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    assert (await handle.describe()).run_id == first.run_id
    await handle.terminate(reason="cleanup")


async def test_signal_request_id_is_deduplicated(client):
    tq, wf_id = unique("tq"), unique("wf-signal-request-id")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        handle = await client.start_workflow(StubbornWorkflow.run, id=wf_id, task_queue=tq)

        def signal(request_id: str) -> SignalWorkflowExecutionRequest:
            return SignalWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=wf_id),
                signal_name="ping",
                identity="policies-test",
                request_id=request_id,
            )

        await client.workflow_service.signal_workflow_execution(signal("signal-1"))
        await client.workflow_service.signal_workflow_execution(signal("signal-1"))
        await client.workflow_service.signal_workflow_execution(signal("signal-2"))
        await handle.signal(StubbornWorkflow.finish)
        assert await handle.result() == "finished"
    events = await history_events(handle)
    signaled = [e.workflow_execution_signaled_event_attributes for e in events_named(events, "WORKFLOW_EXECUTION_SIGNALED")]
    assert [s.signal_name for s in signaled] == ["ping", "ping", "finish"]
    assert [s.request_id for s in signaled[:2]] == ["signal-1", "signal-2"]


async def test_repeated_cancel_is_recorded_once(client):
    tq, wf_id = unique("tq"), unique("wf-cancel-twice")
    async with new_worker(client, tq, workflows=WORKFLOWS):
        handle = await client.start_workflow(StubbornWorkflow.run, id=wf_id, task_queue=tq)
        await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED")

        def cancel(request_id: str) -> RequestCancelWorkflowExecutionRequest:
            return RequestCancelWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=wf_id),
                identity="policies-test",
                request_id=request_id,
                reason="please stop",
            )

        await client.workflow_service.request_cancel_workflow_execution(cancel("cancel-1"))
        await client.workflow_service.request_cancel_workflow_execution(cancel("cancel-1"))
        # A different request id while the cancellation is pending is accepted too, and ignored.
        await client.workflow_service.request_cancel_workflow_execution(cancel("cancel-2"))
        await handle.cancel()
        # Let the workflow see the cancellation on its own before asking it to finish.
        await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED", count=2)
        await handle.signal(StubbornWorkflow.finish)
        assert await handle.result() == "finished after cancellation"
        # Cancelling a closed workflow is accepted and changes nothing.
        await handle.cancel()
    events = await history_events(handle)
    (requested,) = events_named(events, "WORKFLOW_EXECUTION_CANCEL_REQUESTED")
    attrs = requested.workflow_execution_cancel_requested_event_attributes
    assert attrs.cause == "please stop"
    assert attrs.identity == "policies-test"
    assert event_name(events[-1].event_type) == "WORKFLOW_EXECUTION_COMPLETED"


async def test_repeated_terminate(client):
    tq, wf_id = unique("tq"), unique("wf-terminate-twice")
    handle = await client.start_workflow(OutcomeWorkflow.run, "block", id=wf_id, task_queue=tq)
    await handle.terminate(reason="first")
    with pytest.raises(RPCError) as exc_info:
        await handle.terminate(reason="second")
    assert exc_info.value.status == RPCStatusCode.NOT_FOUND
    # Signals to the closed workflow are refused the same way.
    with pytest.raises(RPCError) as exc_info:
        await handle.signal("ping")
    assert exc_info.value.status == RPCStatusCode.NOT_FOUND
    events = await history_events(handle)
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_EXECUTION_TERMINATED",
    ]
    assert events[-1].workflow_execution_terminated_event_attributes.reason == "first"
