"""The database goes away under a running server (PostgreSQL and MySQL backends).

Connections are killed and new ones refused while workflows are mid-flight: RPCs answer
UNAVAILABLE instead of hanging or crashing, the server reconnects once the database is back,
and every workflow finishes with each activity and timer recorded exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.service import RPCError, RPCStatusCode

import backends
from helpers import FAST_RETRY, eventually, history_event_types, new_worker, unique

WORKFLOWS = 8
ROUNDS = 3
OUTAGE_SECONDS = 6

pytestmark = pytest.mark.skipif(
    backends.backend() == "sqlite",
    reason="needs CHRONICLE_TEST_BACKEND=postgres or mysql: an embedded SQLite file cannot go away",
)


@activity.defn
async def step(index: int, round_: int) -> int:
    return index * 10 + round_


@workflow.defn
class OutageWorkflow:
    """Rounds of activity then timer, so the outage catches each kind of work in flight."""

    @workflow.run
    async def run(self, index: int) -> list[int]:
        results = []
        for round_ in range(ROUNDS):
            results.append(
                await workflow.execute_activity(
                    step, args=[index, round_],
                    start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY,
                )
            )
            await workflow.sleep(1)
        return results


async def _unavailable(call) -> None:
    with pytest.raises(RPCError) as raised:
        await call
    assert raised.value.status == RPCStatusCode.UNAVAILABLE, raised.value


@pytest.mark.timeout(240)
async def test_workflows_finish_across_a_database_outage(fresh_server):
    if fresh_server.is_reference:
        pytest.skip("the reference runs on its own SQLite file")
    tq = unique("tq-outage")
    client = await fresh_server.client()
    async with new_worker(client, tq, workflows=[OutageWorkflow], activities=[step]):
        handles = [
            await client.start_workflow(OutageWorkflow.run, i, id=unique(f"wf-outage-{i}"), task_queue=tq)
            for i in range(WORKFLOWS)
        ]
        for handle in handles:
            await eventually(
                lambda: history_event_types(handle),
                lambda types: "ACTIVITY_TASK_COMPLETED" in types,
                what=f"{handle.id} to complete its first activity",
            )

        fresh_server.block_database()
        try:
            service = client.workflow_service
            await _unavailable(service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=handles[0].id),
                ),
                retry=False,
            ))
            await _unavailable(service.start_workflow_execution(
                StartWorkflowExecutionRequest(
                    namespace=client.namespace, workflow_id=unique("wf-outage-refused"),
                    workflow_type=WorkflowType(name="OutageWorkflow"),
                    task_queue=TaskQueue(name=tq), request_id=unique("req"),
                ),
                retry=False,
            ))
            # Timers come due and the worker's polls fail while the database is gone.
            await asyncio.sleep(OUTAGE_SECONDS)
            assert fresh_server.running, "the server must ride out the outage"
        finally:
            fresh_server.unblock_database()

        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=120)
        assert results == [[i * 10 + r for r in range(ROUNDS)] for i in range(WORKFLOWS)]
        for handle in handles:
            types = await history_event_types(handle)
            assert types.count("ACTIVITY_TASK_COMPLETED") == ROUNDS, (handle.id, types)
            assert types.count("TIMER_FIRED") == ROUNDS, (handle.id, types)
            assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"

        # And the server takes new work as before.
        after = await client.execute_workflow(
            OutageWorkflow.run, 99, id=unique("wf-outage-after"), task_queue=tq,
            execution_timeout=timedelta(seconds=60),
        )
        assert after == [990, 991, 992]
