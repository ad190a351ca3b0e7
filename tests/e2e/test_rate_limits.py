"""Per-namespace rate limits, set as Temporal's dynamic config sets them.

A burst of starts over `frontend.namespaceRPS` is refused with RESOURCE_EXHAUSTED and a
`ResourceExhaustedFailure` (cause RPS_LIMIT), which the SDKs back off on; the worker that
drains the namespace keeps making progress meanwhile (Chronicle counts workers' calls
apart; the reference also lets them through at this rate), and nothing is lost: every
accepted start completes, every refused one never existed, and starts through the SDK's
own retrying client all get in.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.enums.v1 import ResourceExhaustedCause
from temporalio.api.errordetails.v1 import ResourceExhaustedFailure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from conftest import _dispose, _start_server
from helpers import new_worker, unique

NAMESPACE_RPS = 5
BURST = 40


@workflow.defn
class Quick:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@pytest.fixture
def limited_server(request: pytest.FixtureRequest):
    handle = _start_server("rps", ["--dynamic-config-value", f"frontend.namespaceRPS={NAMESPACE_RPS}"])
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


async def _raw_start(client: Client, workflow_id: str, task_queue: str) -> RPCError | None:
    request = StartWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_id=workflow_id,
        workflow_type=WorkflowType(name="Quick"),
        task_queue=TaskQueue(name=task_queue),
        input=(await client.data_converter.encode_wrapper([7])),
        request_id=str(uuid.uuid4()),
    )
    try:
        await client.workflow_service.start_workflow_execution(request, retry=False)
        return None
    except RPCError as e:
        return e


def _cause(error: RPCError) -> int | None:
    for detail in error.grpc_status.details:
        failure = ResourceExhaustedFailure()
        if detail.Unpack(failure):
            return failure.cause
    return None


async def test_a_burst_over_the_namespace_rate_is_refused_while_workers_progress(limited_server):
    client = await limited_server.client()
    task_queue = unique("rps")
    ids = [unique("rps-wf") for _ in range(BURST)]
    async with new_worker(client, task_queue, workflows=[Quick]):
        outcomes = await asyncio.gather(*(_raw_start(client, i, task_queue) for i in ids))
        accepted = [i for i, e in zip(ids, outcomes) if e is None]
        refused = [(i, e) for i, e in zip(ids, outcomes) if e is not None]
        assert accepted, "the burst allowance must let some starts in"
        assert refused, f"{BURST} starts at once must go over {NAMESPACE_RPS}/s"
        for _, error in refused:
            assert error.status == RPCStatusCode.RESOURCE_EXHAUSTED, error
            assert _cause(error) == ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, error

        # The worker drains the accepted runs although clients keep the namespace at its rate.
        results = [await client.get_workflow_handle(i).result() for i in accepted]
        assert results == [7] * len(accepted)
        for workflow_id, _ in refused[:3]:
            with pytest.raises(RPCError) as missing:
                await client.get_workflow_handle(workflow_id).describe()
            assert missing.value.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.RESOURCE_EXHAUSTED)

        # The SDK's own client backs off and retries: every start gets in and completes.
        handles = await asyncio.gather(
            *(client.start_workflow(Quick.run, n, id=unique("rps-sdk"), task_queue=task_queue) for n in range(15))
        )
        assert [await h.result() for h in handles] == list(range(15))
