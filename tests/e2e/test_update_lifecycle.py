"""Updates against closing runs: what becomes of an update that was accepted (or only admitted)
when its run completes, fails, is cancelled, terminated or continues as new; updates that name
the first run of another chain; updates in flight across continue-as-new; an update sent before
any worker polls."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import Input, Meta, Request, UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import (
    PollWorkflowExecutionUpdateRequest,
    UpdateWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from helpers import event_name, events_named, history_event_types, history_events, new_worker, unique, wait_for_status

Stage = UpdateWorkflowExecutionLifecycleStage
ACCEPTED = Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
COMPLETED = Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED

# The server's outcome for an accepted update whose run closed before the handler finished.
ABORTED_TYPE = "AcceptedUpdateCompletedWorkflow"
ABORTED_MESSAGE = "Workflow Update failed because the Workflow completed before the Update completed."

CLOSING_EVENT = {
    "complete": "WORKFLOW_EXECUTION_COMPLETED",
    "fail": "WORKFLOW_EXECUTION_FAILED",
    "cancel": "WORKFLOW_EXECUTION_CANCELED",
    "terminate": "WORKFLOW_EXECUTION_TERMINATED",
    "continue_as_new": "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
}


@workflow.defn
class Closing:
    """Run 0 waits for `end(mode)` and then completes, fails or continues as new, whatever
    update handlers are still parked. Later runs serve `whoami` until `end("complete")`."""

    @workflow.init
    def __init__(self, gen: int) -> None:
        # Set here, not in run: an update may be handled in the run's first activation, before run.
        self._mode: str | None = None
        self._gen = gen
        self._released = False

    @workflow.update
    async def park(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"

    @workflow.update
    async def slow(self, item: str) -> str:
        # Finishes in a later workflow task than the one that accepts it.
        await workflow.sleep(0.2)
        await workflow.wait_condition(lambda: self._released)
        return f"slow {item} in gen {self._gen}"

    @workflow.update
    def whoami(self) -> str:
        return f"gen {self._gen}"

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.signal
    def end(self, mode: str) -> None:
        self._mode = mode

    @workflow.run
    async def run(self, gen: int) -> str:
        await workflow.wait_condition(lambda: self._mode is not None)
        if self._mode == "fail":
            raise ApplicationError("run failed on purpose", non_retryable=True)
        if self._mode == "continue_as_new":
            workflow.continue_as_new(gen + 1)
        return f"gen {gen} done"


def _poll_request(workflow_id: str, run_id: str, update_id: str, stage=COMPLETED) -> PollWorkflowExecutionUpdateRequest:
    return PollWorkflowExecutionUpdateRequest(
        namespace="default",
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id), update_id=update_id
        ),
        identity="e2e",
        wait_policy=WaitPolicy(lifecycle_stage=stage),
    )


async def _poll(client: Client, workflow_id: str, run_id: str, update_id: str, stage=COMPLETED):
    return await client.workflow_service.poll_workflow_execution_update(
        _poll_request(workflow_id, run_id, update_id, stage), timeout=timedelta(seconds=10)
    )


def _raw_update(workflow_id: str, update_id: str, name: str, *, run_id: str = "", first_execution_run_id: str = ""):
    return UpdateWorkflowExecutionRequest(
        namespace="default",
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        first_execution_run_id=first_execution_run_id,
        wait_policy=WaitPolicy(lifecycle_stage=COMPLETED),
        request=Request(meta=Meta(update_id=update_id, identity="e2e"), input=Input(name=name)),
    )


async def _close(handle, mode: str) -> None:
    if mode == "cancel":
        await handle.cancel()
    elif mode == "terminate":
        await handle.terminate("closing on purpose")
    else:
        await handle.signal(Closing.end, mode)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the SDK warns of the abandoned handler
@pytest.mark.parametrize("mode", list(CLOSING_EVENT))
async def test_accepted_update_fails_when_its_run_closes(client, mode):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[Closing]):
        handle = await client.start_workflow(Closing.run, 0, id=unique(f"wf-upd-{mode}"), task_queue=tq)
        run_id = handle.result_run_id
        update = await handle.start_update(Closing.park, id="parked", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert update.workflow_run_id == run_id
        await _close(handle, mode)

        # The handle's result (polled against the update's run) is the server's abort failure.
        with pytest.raises(WorkflowUpdateFailedError) as exc_info:
            await asyncio.wait_for(update.result(), 15)
        cause = exc_info.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == ABORTED_TYPE
        assert cause.message == ABORTED_MESSAGE
        assert cause.non_retryable

        # PollWorkflowExecutionUpdate names the same outcome, as COMPLETED.
        polled = await _poll(client, handle.id, run_id, "parked")
        assert polled.stage == COMPLETED
        assert polled.update_ref.workflow_execution.run_id == run_id
        failure = polled.outcome.failure
        assert polled.outcome.HasField("failure")
        assert failure.message == ABORTED_MESSAGE
        assert failure.source == "Server"
        assert failure.application_failure_info.type == ABORTED_TYPE
        assert failure.application_failure_info.non_retryable

        first_run = client.get_workflow_handle(handle.id, run_id=run_id)
        names = await history_event_types(first_run)
        # The abort leaves no UPDATE_COMPLETED event: the run just closes after accepting.
        assert names.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 1
        assert "WORKFLOW_EXECUTION_UPDATE_COMPLETED" not in names
        assert names[-1] == CLOSING_EVENT[mode]

        if mode == "continue_as_new":
            # The update belonged to the first run: asked of the chain's current run it is unknown.
            with pytest.raises(RPCError) as exc_info:
                await _poll(client, handle.id, "", "parked")
            assert exc_info.value.status == RPCStatusCode.NOT_FOUND
            assert exc_info.value.message == 'update "parked" not found'
            await client.get_workflow_handle(handle.id).signal(Closing.end, "complete")
            assert await client.get_workflow_handle(handle.id).result() == "gen 1 done"
        else:
            # A new update to the closed workflow is refused outright.
            with pytest.raises(RPCError) as exc_info:
                await handle.execute_update(Closing.whoami, id="too-late")
            assert exc_info.value.status == RPCStatusCode.NOT_FOUND
            assert exc_info.value.message == "workflow execution already completed"


async def test_admitted_update_is_aborted_when_the_run_is_terminated(client):
    """An update the server admitted but no worker has seen yet (no worker polls) dies with
    its run: the waiting caller gets NOT_FOUND, and nothing of it reaches the history."""
    tq = unique("tq-no-worker")
    handle = await client.start_workflow(Closing.run, 0, id=unique("wf-upd-admitted"), task_queue=tq)
    call = asyncio.create_task(
        client.workflow_service.update_workflow_execution(
            _raw_update(handle.id, "admitted", "whoami"), timeout=timedelta(seconds=15)
        )
    )
    # Admitted: known to the server, not yet accepted.
    async def admitted() -> bool:
        try:
            r = await client.workflow_service.poll_workflow_execution_update(
                _poll_request(handle.id, "", "admitted", Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED),
                timeout=timedelta(seconds=5),
            )
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        assert r.stage == Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
        return True

    deadline = asyncio.get_running_loop().time() + 10
    while not await admitted():
        assert asyncio.get_running_loop().time() < deadline, "the update was never admitted"
        await asyncio.sleep(0.05)
    assert not call.done()

    await handle.terminate("closing on purpose")
    with pytest.raises(RPCError) as exc_info:
        await asyncio.wait_for(call, 15)
    assert exc_info.value.status == RPCStatusCode.NOT_FOUND
    assert exc_info.value.message == "workflow update was aborted by closing workflow"
    names = await history_event_types(handle)
    assert names == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_EXECUTION_TERMINATED"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
async def test_update_in_flight_does_not_block_continue_as_new(client):
    """Run 0 continues as new while an update handler is parked; the new run starts at once,
    takes updates, and the chain is addressed by its first run id."""
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[Closing]):
        handle = await client.start_workflow(Closing.run, 0, id=unique("wf-upd-can"), task_queue=tq)
        first_run_id = handle.result_run_id
        parked = await handle.start_update(Closing.park, id="parked", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await handle.signal(Closing.end, "continue_as_new")
        await wait_for_status(
            client.get_workflow_handle(handle.id, run_id=first_run_id), WorkflowExecutionStatus.CONTINUED_AS_NEW
        )

        latest = client.get_workflow_handle(handle.id)
        # The new run serves updates while the old run's update is left behind.
        assert await latest.execute_update(Closing.whoami, id="who-1") == "gen 1"
        desc = await latest.describe()
        assert desc.run_id != first_run_id
        with pytest.raises(WorkflowUpdateFailedError) as exc_info:
            await parked.result()
        assert exc_info.value.cause.type == ABORTED_TYPE

        # Naming the chain's first run id reaches the current run...
        same_chain = client.get_workflow_handle(handle.id, first_execution_run_id=first_run_id)
        assert await same_chain.execute_update(Closing.whoami, id="who-2") == "gen 1"

        # ...naming the first run of another chain is refused, whatever the run id.
        other = await client.start_workflow(Closing.run, 0, id=unique("wf-upd-other"), task_queue=tq)
        for run_id in ("", desc.run_id):
            with pytest.raises(RPCError) as exc_info:
                await client.workflow_service.update_workflow_execution(
                    _raw_update(handle.id, f"foreign-{run_id}", "whoami", run_id=run_id,
                                first_execution_run_id=other.result_run_id)
                )
            assert exc_info.value.status == RPCStatusCode.NOT_FOUND
            assert exc_info.value.message == "workflow execution not found"
        # The SDK handle's first_execution_run_id goes on the request the same way.
        foreign = client.get_workflow_handle(handle.id, first_execution_run_id=other.result_run_id)
        with pytest.raises(RPCError) as exc_info:
            await foreign.execute_update(Closing.whoami, id="who-3")
        assert exc_info.value.status == RPCStatusCode.NOT_FOUND

        await latest.signal(Closing.end, "complete")
        assert await latest.result() == "gen 1 done"
        await other.terminate()

    first = await history_event_types(client.get_workflow_handle(handle.id, run_id=first_run_id))
    assert first[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    assert "WORKFLOW_EXECUTION_UPDATE_COMPLETED" not in first
    events = await history_events(latest)
    updates = [
        e.workflow_execution_update_accepted_event_attributes.protocol_instance_id
        for e in events_named(events, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    ]
    assert updates == ["who-1", "who-2"]  # the refused ones left nothing
    assert event_name(events[-1].event_type) == "WORKFLOW_EXECUTION_COMPLETED"


async def test_update_sent_before_any_worker_is_delivered(client):
    """start_update(wait_for_stage=ACCEPTED) waits while no worker polls; once one does, the
    update is accepted in one workflow task and completed in a later one, and its result reaches
    the handle."""
    tq = unique("tq")
    handle = await client.start_workflow(Closing.run, 0, id=unique("wf-upd-early"), task_queue=tq)
    start = asyncio.create_task(
        handle.start_update(Closing.slow, "x", id="early", wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    )
    # Not accepted while nobody polls (the admitted update is visible to a poll for ADMITTED).
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            r = await _poll(client, handle.id, "", "early", Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED)
            assert r.stage == Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
            break
        except RPCError as e:
            assert e.status == RPCStatusCode.NOT_FOUND
            assert asyncio.get_running_loop().time() < deadline, "the update was never admitted"
            await asyncio.sleep(0.05)
    assert not start.done()
    assert await history_event_types(handle) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]

    async with new_worker(client, tq, workflows=[Closing]):
        update = await asyncio.wait_for(start, 15)
        assert update.id == "early"
        # Accepted but unfinished: a poll for ACCEPTED returns that stage and no outcome.
        polled = await _poll(client, handle.id, "", "early", ACCEPTED)
        assert polled.stage == ACCEPTED
        assert not polled.HasField("outcome")
        await handle.signal(Closing.release)
        assert await asyncio.wait_for(update.result(), 15) == "slow x in gen 0"
        polled = await _poll(client, handle.id, handle.result_run_id, "early")
        assert polled.stage == COMPLETED
        assert polled.outcome.success.payloads[0].data == b'"slow x in gen 0"'
        await handle.signal(Closing.end, "complete")
        assert await handle.result() == "gen 0 done"

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    # The update rides the first workflow task; it completes in a later one.
    assert names[:5] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    ]
    accepted = names.index("WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    completed = names.index("WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    assert names.index("TIMER_FIRED") < completed
    assert names[accepted + 1:completed].count("WORKFLOW_TASK_COMPLETED") >= 1
    (acc,) = events_named(events, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    (comp,) = events_named(events, "WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    assert comp.workflow_execution_update_completed_event_attributes.accepted_event_id == acc.event_id
