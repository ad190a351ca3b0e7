"""Retention: a closed run is deleted once its namespace's retention has passed since it
closed; open runs stay. The reference refuses a retention under an hour, so this runs on
Chronicle alone, with its minimum lowered (CHRONICLE_LIMITS_MIN_RETENTION_SECS)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from conftest import _dispose, _start_server, _target
from helpers import eventually, list_ids, new_worker, unique

RETENTION = timedelta(seconds=2)


@pytest.fixture(scope="module")
def short_retention(request: pytest.FixtureRequest):
    if _target() == "reference":
        pytest.skip("the reference keeps closed runs at least an hour")
    handle = _start_server("retention", env={"CHRONICLE_LIMITS_MIN_RETENTION_SECS": "1"})
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


async def _namespace(server, retention: timedelta) -> Client:
    client = await server.client()
    name = f"ns-ret-{uuid.uuid4().hex[:10]}"
    period = Duration()
    period.FromTimedelta(retention)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=period)
    )
    return await Client.connect(server.address, namespace=name)


@workflow.defn
class Done:
    @workflow.run
    async def run(self, wait: bool) -> str:
        if wait:
            await workflow.wait_condition(lambda: False)
        return "done"


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_closed_runs_go_after_the_retention_and_open_ones_stay(short_retention) -> None:
    client = await _namespace(short_retention, RETENTION)
    queue = unique("retention")
    async with new_worker(client, queue, workflows=[Done]):
        closed = await client.start_workflow(Done.run, False, id=unique("closed"), task_queue=queue)
        assert await closed.result() == "done"
        running = await client.start_workflow(Done.run, True, id=unique("open"), task_queue=queue)
        assert await _exists(client, closed.id), "kept until the retention passed"

        async def closed_gone() -> bool:
            return not await _exists(client, closed.id)

        await eventually(closed_gone, bool, what="the closed run to be deleted", timeout=30)
        await eventually(
            lambda: list_ids(client, ""), lambda ids: ids == [running.id], what="only the open run listed"
        )
        assert await _exists(client, running.id)
        await running.terminate()
    # Terminated, the open run goes the same way.
    await eventually(lambda: list_ids(client, ""), lambda ids: ids == [], what="the terminated run to go")


async def test_a_retention_below_the_minimum_is_refused(short_retention) -> None:
    client = await short_retention.client()
    period = Duration()
    period.FromTimedelta(timedelta(milliseconds=500))
    with pytest.raises(RPCError) as refused:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=unique("ns-short"), workflow_execution_retention_period=period)
        )
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT
