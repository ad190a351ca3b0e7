"""Continue-as-new: run chains under one workflow id, their links, and following them."""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import ContinueAsNewInitiator
from temporalio.client import WorkflowContinuedAsNewError, WorkflowExecutionStatus

from helpers import event_name, history_events, new_worker, unique


@workflow.defn
class ChainWorkflow:
    """Continues as new `remaining` times; each run appends what it knows about itself."""

    @workflow.run
    async def run(self, remaining: int, seen: list[dict]) -> list[dict]:
        info = workflow.info()
        seen = seen + [
            {
                "run_id": info.run_id,
                "continued_run_id": info.continued_run_id,
                "first_execution_run_id": info.first_execution_run_id,
                "remaining": remaining,
            }
        ]
        if remaining > 0:
            workflow.continue_as_new(args=[remaining - 1, seen])
        return seen


async def test_continue_as_new_chain(client):
    tq, wf_id = unique("tq"), unique("wf-can")
    async with new_worker(client, tq, workflows=[ChainWorkflow]):
        handle = await client.start_workflow(ChainWorkflow.run, args=[2, []], id=wf_id, task_queue=tq)
        first_run_id = handle.result_run_id
        seen = await handle.result()

    run_ids = [s["run_id"] for s in seen]
    assert len(run_ids) == 3 and len(set(run_ids)) == 3
    assert run_ids[0] == first_run_id
    assert [s["remaining"] for s in seen] == [2, 1, 0]
    # What each run was told about its place in the chain.
    assert [s["continued_run_id"] for s in seen] == [None, run_ids[0], run_ids[1]]
    assert all(s["first_execution_run_id"] == first_run_id for s in seen)

    # Every earlier run ends with CONTINUED_AS_NEW, pointing at the next run.
    for index, run_id in enumerate(run_ids):
        events = await history_events(client.get_workflow_handle(wf_id, run_id=run_id))
        names = [event_name(e.event_type) for e in events]
        started = events[0].workflow_execution_started_event_attributes
        assert started.first_execution_run_id == first_run_id
        assert started.original_execution_run_id == run_id
        if index == 0:
            assert started.continued_execution_run_id == ""
            assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_UNSPECIFIED
        else:
            assert started.continued_execution_run_id == run_ids[index - 1]
            assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
            # The new run's input is what the previous run passed to continue_as_new.
            assert started.input.payloads[0].data == str(2 - index).encode()
        if index < 2:
            assert names == [
                "WORKFLOW_EXECUTION_STARTED",
                "WORKFLOW_TASK_SCHEDULED",
                "WORKFLOW_TASK_STARTED",
                "WORKFLOW_TASK_COMPLETED",
                "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
            ]
            attrs = events[-1].workflow_execution_continued_as_new_event_attributes
            assert attrs.new_execution_run_id == run_ids[index + 1]
            assert attrs.workflow_type.name == "ChainWorkflow"
            assert attrs.task_queue.name == tq
            assert attrs.workflow_task_completed_event_id == 4
            assert attrs.input.payloads[0].data == str(1 - index).encode()
            desc = await client.get_workflow_handle(wf_id, run_id=run_id).describe()
            assert desc.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        else:
            assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"

    # Describing the workflow id finds the last run, which knows the first.
    latest = await client.get_workflow_handle(wf_id).describe()
    assert latest.run_id == run_ids[-1]
    assert latest.status == WorkflowExecutionStatus.COMPLETED
    assert latest.raw_description.workflow_execution_info.first_run_id == first_run_id


async def test_result_on_first_run_follows_the_chain(client):
    tq, wf_id = unique("tq"), unique("wf-can-follow")
    async with new_worker(client, tq, workflows=[ChainWorkflow]):
        handle = await client.start_workflow(ChainWorkflow.run, args=[2, []], id=wf_id, task_queue=tq)
        first = client.get_workflow_handle(wf_id, run_id=handle.result_run_id)
        seen = await first.result()
    assert len(seen) == 3 and seen[0]["run_id"] == handle.result_run_id

    # Not following: the first run's own outcome is "continued as new", naming the next run.
    with pytest.raises(WorkflowContinuedAsNewError) as exc_info:
        await first.result(follow_runs=False)
    assert exc_info.value.new_execution_run_id == seen[1]["run_id"]
    # A handle on the middle run follows from there.
    assert await client.get_workflow_handle(wf_id, run_id=seen[1]["run_id"]).result() == seen
