"""Durability: workflows in flight survive `kill -9` of the server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus

from helpers import FAST_RETRY, history_event_types, new_worker, unique

WORKFLOWS = 5
TIMER_SECONDS = 4


@activity.defn
async def tag(stage: str, index: int) -> str:
    return f"{stage}{index}"


@workflow.defn
class DurableWorkflow:
    """activity -> timer -> activity, so a crash lands in the middle."""

    @workflow.run
    async def run(self, index: int) -> str:
        opts = dict(start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY)
        before = await workflow.execute_activity(tag, args=["pre", index], **opts)
        await workflow.sleep(TIMER_SECONDS)
        after = await workflow.execute_activity(tag, args=["post", index], **opts)
        return f"{before}/{after}"


async def _wait_until_all_timers_started(handles, timeout: float = 15) -> None:
    async def all_started() -> bool:
        for h in handles:
            if "TIMER_STARTED" not in await history_event_types(h):
                return False
        return True

    deadline = asyncio.get_running_loop().time() + timeout
    while not await all_started():
        assert asyncio.get_running_loop().time() < deadline, "workflows never reached their timers"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(180)
async def test_workflows_survive_kill9_and_restart(fresh_server):
    tq = unique("tq")
    ids = [unique(f"wf-durable-{i}") for i in range(WORKFLOWS)]

    client = await fresh_server.client()
    async with new_worker(client, tq, workflows=[DurableWorkflow], activities=[tag]):
        handles = [
            await client.start_workflow(DurableWorkflow.run, i, id=wf_id, task_queue=tq)
            for i, wf_id in enumerate(ids)
        ]
        await _wait_until_all_timers_started(handles)
    run_ids = [h.result_run_id for h in handles]

    # Crash hard while every workflow is parked on its timer.
    fresh_server.kill9()
    assert not fresh_server.running
    fresh_server.restart()

    client = await fresh_server.client()
    for wf_id, run_id in zip(ids, run_ids):
        desc = await client.get_workflow_handle(wf_id, run_id=run_id).describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING, wf_id

    async with new_worker(client, tq, workflows=[DurableWorkflow], activities=[tag]):
        results = await asyncio.wait_for(
            asyncio.gather(
                *(client.get_workflow_handle(wf_id, run_id=run_id).result()
                  for wf_id, run_id in zip(ids, run_ids))
            ),
            timeout=90,
        )
    assert results == [f"pre{i}/post{i}" for i in range(WORKFLOWS)]

    for wf_id, run_id in zip(ids, run_ids):
        events = await history_event_types(client.get_workflow_handle(wf_id, run_id=run_id))
        assert events.count("TIMER_FIRED") == 1
        assert events.count("ACTIVITY_TASK_COMPLETED") == 2
        assert events[-1] == "WORKFLOW_EXECUTION_COMPLETED"
