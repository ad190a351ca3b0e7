"""Workflows that must not hang: what the reference accepts, Chronicle must accept too.

Older SDK APIs (the TypeScript SDK's untyped `searchAttributes`, which its sink tests
use, and Python's deprecated dict form) send each search attribute as a JSON *list*, e.g.
`[123]` for an Int, `[true]` for a Bool, `[]` to clear. The reference accepts a list for
every type and keeps the payload as sent, with its `type` metadata added. A server that
refuses it on a workflow's upsert fails the task with BAD_SEARCH_ATTRIBUTES, and the SDK
sends the same commands on every retry, so the workflow never ends.

Uses the `sa_client` server (custom attributes of helpers.CUSTOM_SEARCH_ATTRIBUTES).
"""

from __future__ import annotations

import asyncio
import json
import warnings
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.service import RPCError

from helpers import event_name, history_events, new_worker, unique

# Fails in well under this on the reference; on a server that refuses the values the
# workflow task retries for ever, so the bound is what turns a hang into a failure.
RESULT_TIMEOUT_S = 15.0


def _legacy(attributes: dict) -> dict:
    """Search attributes in the deprecated untyped form (values are lists)."""
    return attributes


@workflow.defn
class LegacyUpsertWorkflow:
    """Like the TypeScript SDK's upsertAndReadSearchAttributes (test-sinks.ts)."""

    @workflow.run
    async def run(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            workflow.upsert_search_attributes(_legacy({"VisInt": [123], "VisBool": [True]}))
            workflow.upsert_search_attributes(
                _legacy({"VisInt": [], "VisKeyword": ["durable code"], "VisText": ["is useful"], "VisDouble": [3.14]})
            )


def _data(payload) -> object:
    return json.loads(payload.data) if payload.data else None


async def test_start_accepts_list_encoded_scalar_search_attributes(sa_client):
    """StartWorkflowExecution with `[1]` for an Int (the TS SDK's test helper
    registerDefaultCustomSearchAttributes waits until exactly this start succeeds)."""
    client = sa_client
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            handle = await client.start_workflow(
                "NoSuchWorkflow",
                id=unique("legacy-sa-start"),
                task_queue=unique("nobody-polls"),
                search_attributes=_legacy({"VisInt": [1], "VisBool": [True], "VisKeyword": ["k"]}),
                execution_timeout=timedelta(seconds=30),
            )
        except RPCError as e:
            pytest.fail(f"start refused list-encoded search attributes: {e.status.name}: {e.message}")
    try:
        desc = await handle.describe()
        fields = desc.raw_description.workflow_execution_info.search_attributes.indexed_fields
        assert _data(fields["VisInt"]) == [1]
        assert fields["VisInt"].metadata["type"] == b"Int"
        assert _data(fields["VisBool"]) == [True]
    finally:
        await handle.terminate()


async def test_upsert_of_list_encoded_scalar_search_attributes_completes(sa_client):
    client = sa_client
    task_queue = unique("legacy-sa-upsert")
    async with new_worker(client, task_queue, workflows=[LegacyUpsertWorkflow]):
        handle = await client.start_workflow(
            LegacyUpsertWorkflow.run, id=unique("legacy-sa-upsert-wf"), task_queue=task_queue
        )
        try:
            await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        except asyncio.TimeoutError:
            events = await history_events(handle)
            failed = [
                e.workflow_task_failed_event_attributes
                for e in events
                if event_name(e.event_type) == "WORKFLOW_TASK_FAILED"
            ]
            desc = await handle.describe()
            attempt = desc.raw_description.pending_workflow_task.attempt
            pytest.fail(
                f"workflow did not complete in {RESULT_TIMEOUT_S}s (workflow task attempt {attempt}); "
                f"task failures: {[(f.cause, f.failure.message) for f in failed]}"
            )
    events = await history_events(handle)
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in events
        if event_name(e.event_type) == "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"
    ]
    assert len(upserts) == 2
    assert _data(upserts[0]["VisInt"]) == [123]
    assert upserts[0]["VisInt"].metadata["type"] == b"Int"
    assert _data(upserts[1]["VisInt"]) == []
    assert _data(upserts[1]["VisDouble"]) == [3.14]
