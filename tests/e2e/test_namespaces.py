"""Namespace lifecycle beyond create/describe/update: deprecation and deletion."""

from __future__ import annotations

import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration

import pytest
from temporalio.api.operatorservice.v1 import DeleteNamespaceRequest
from temporalio.api.workflowservice.v1 import (
    DeprecateNamespaceRequest,
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from helpers import eventually, unique


async def _register(client: Client) -> str:
    name = f"ns-life-{uuid.uuid4().hex[:10]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention)
    )
    return name


async def _client_for(server, namespace: str) -> Client:
    async def connect():
        try:
            client = await Client.connect(server.address, namespace=namespace)
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
            return client
        except RPCError:
            return None

    # Namespace registration can take a moment to be visible on the reference.
    return await eventually(connect, lambda c: c is not None, what=f"namespace {namespace}")


async def test_deprecated_namespace_refuses_new_workflows(server, client):
    name = await _register(client)
    ns_client = await _client_for(server, name)
    await client.workflow_service.deprecate_namespace(DeprecateNamespaceRequest(namespace=name))
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
    assert described.namespace_info.state == 2  # NAMESPACE_STATE_DEPRECATED

    async def start():
        try:
            await ns_client.start_workflow("Anything", id=unique("wf-deprecated"), task_queue=unique("tq"))
            return None
        except RPCError as err:
            return err

    err = await eventually(start, lambda e: e is not None, what="starts refused in a deprecated namespace")
    assert err.status == RPCStatusCode.FAILED_PRECONDITION


async def test_deleted_namespace_is_gone_with_its_workflows(server, client):
    name = await _register(client)
    ns_client = await _client_for(server, name)
    handle = await ns_client.start_workflow("Anything", id=unique("wf-doomed"), task_queue=unique("tq"))
    resp = await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=name))
    assert resp.deleted_namespace.startswith(f"{name}-deleted-")

    async def described():
        try:
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
            return None
        except RPCError as err:
            return err

    err = await eventually(described, lambda e: e is not None, what="the namespace to be gone")
    assert err.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as exc_info:
        await handle.describe()
    assert exc_info.value.status == RPCStatusCode.NOT_FOUND
