"""Invalid requests sent through the raw gRPC stub get the right status codes.

Expected codes are what the reference server returns.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    RespondActivityTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.service import RPCError, RPCStatusCode

from helpers import unique


def start_request(namespace: str) -> StartWorkflowExecutionRequest:
    return StartWorkflowExecutionRequest(
        namespace=namespace,
        workflow_id=unique("wf-raw"),
        workflow_type=WorkflowType(name="RawWorkflow"),
        task_queue=TaskQueue(name=unique("tq")),
        request_id=str(uuid.uuid4()),
        identity="chronicle-e2e",
    )


def _empty_id(req):
    req.workflow_id = ""


def _long_id(req):
    req.workflow_id = "x" * 1001


def _unknown_namespace(req):
    req.namespace = f"no-such-namespace-{uuid.uuid4()}"


def _no_task_queue(req):
    req.ClearField("task_queue")


def _empty_task_queue_name(req):
    req.task_queue.name = ""


def _no_workflow_type(req):
    req.ClearField("workflow_type")


def _negative_timeout(req):
    req.workflow_execution_timeout.FromSeconds(-5)


async def _expect_status(call, status: RPCStatusCode) -> RPCError:
    with pytest.raises(RPCError) as exc_info:
        await call
    assert exc_info.value.status == status, f"{exc_info.value.status.name}: {exc_info.value.message}"
    return exc_info.value


async def test_valid_raw_start_succeeds(client):
    """Sanity check for the base request the negative cases mutate."""
    req = start_request(client.namespace)
    resp = await client.workflow_service.start_workflow_execution(req)
    assert resp.run_id
    handle = client.get_workflow_handle(req.workflow_id, run_id=resp.run_id)
    assert (await handle.describe()).workflow_type == "RawWorkflow"
    await handle.terminate(reason="cleanup")


@pytest.mark.parametrize(
    "mutate, status",
    [
        (_empty_id, RPCStatusCode.INVALID_ARGUMENT),
        (_long_id, RPCStatusCode.INVALID_ARGUMENT),
        (_unknown_namespace, RPCStatusCode.NOT_FOUND),
        (_no_task_queue, RPCStatusCode.INVALID_ARGUMENT),
        (_empty_task_queue_name, RPCStatusCode.INVALID_ARGUMENT),
        (_no_workflow_type, RPCStatusCode.INVALID_ARGUMENT),
        (_negative_timeout, RPCStatusCode.INVALID_ARGUMENT),
    ],
    ids=lambda v: v.__name__.lstrip("_") if callable(v) else v.name,
)
async def test_bad_start_request(client, mutate, status):
    req = start_request(client.namespace)
    mutate(req)
    await _expect_status(client.workflow_service.start_workflow_execution(req), status)


@pytest.mark.parametrize("token", [b"not-a-task-token", b"\xff\x00\x13garbage"], ids=["text", "binary"])
async def test_malformed_activity_task_token(client, token):
    req = RespondActivityTaskCompletedRequest(
        namespace=client.namespace, task_token=token, identity="chronicle-e2e"
    )
    await _expect_status(
        client.workflow_service.respond_activity_task_completed(req), RPCStatusCode.INVALID_ARGUMENT
    )


async def test_malformed_workflow_task_token(client):
    req = RespondWorkflowTaskCompletedRequest(
        namespace=client.namespace, task_token=b"not-a-task-token", identity="chronicle-e2e"
    )
    await _expect_status(
        client.workflow_service.respond_workflow_task_completed(req), RPCStatusCode.INVALID_ARGUMENT
    )


async def test_empty_activity_task_token(client):
    req = RespondActivityTaskCompletedRequest(namespace=client.namespace, identity="chronicle-e2e")
    await _expect_status(
        client.workflow_service.respond_activity_task_completed(req), RPCStatusCode.INVALID_ARGUMENT
    )


async def test_unknown_workflow_is_not_found(client):
    execution = WorkflowExecution(workflow_id=unique("wf-missing"))
    await _expect_status(
        client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=execution)
        ),
        RPCStatusCode.NOT_FOUND,
    )
    await _expect_status(
        client.workflow_service.signal_workflow_execution(
            SignalWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=execution,
                signal_name="nobody-listens",
                identity="chronicle-e2e",
                request_id=str(uuid.uuid4()),
            )
        ),
        RPCStatusCode.NOT_FOUND,
    )
