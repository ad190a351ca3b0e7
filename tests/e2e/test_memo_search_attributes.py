"""Memo and search attributes: given at start, upserted by the workflow, returned by describe.

Uses the `sa_client` server, which registers the custom search attributes of
helpers.CUSTOM_SEARCH_ATTRIBUTES (VisKeyword, VisInt, ...) at start-up.
"""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from helpers import (
    SA_INT,
    SA_KEYWORD,
    SA_KEYWORD_LIST,
    event_name,
    events_named,
    history_events,
    new_worker,
    unique,
    wait_for_event,
)

UNREGISTERED = SearchAttributeKey.for_keyword("NoSuchSearchAttribute")


@workflow.defn
class UpsertWorkflow:
    """Upserts memo and search attributes in its first task, then waits for `finish`."""

    def __init__(self) -> None:
        self._done = False

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.run
    async def run(self, mode: str) -> dict:
        if mode == "upsert":
            workflow.upsert_memo({"added": {"nested": [1, 2]}, "changed": "new", "removed": None})
            workflow.upsert_search_attributes(
                [
                    SA_KEYWORD.value_set("upserted"),
                    SA_INT.value_set(42),
                    SA_KEYWORD_LIST.value_unset(),
                ]
            )
        elif mode == "unregistered":
            workflow.upsert_search_attributes([UNREGISTERED.value_set("x")])
        await workflow.wait_condition(lambda: self._done)
        return {
            "memo": workflow.memo(),
            "keyword": workflow.info().typed_search_attributes.get(SA_KEYWORD),
            "int": workflow.info().typed_search_attributes.get(SA_INT),
        }


START_MEMO = {"changed": "old", "removed": "soon", "kept": {"k": True}}
START_ATTRIBUTES = TypedSearchAttributes(
    [
        SearchAttributePair(SA_KEYWORD, "at-start"),
        SearchAttributePair(SA_INT, 7),
        SearchAttributePair(SA_KEYWORD_LIST, ["a", "b"]),
    ]
)


async def test_memo_and_search_attributes_at_start(sa_client):
    client = sa_client
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[UpsertWorkflow]):
        handle = await client.start_workflow(
            UpsertWorkflow.run, "none", id=unique("wf-memo"), task_queue=tq,
            memo=START_MEMO, search_attributes=START_ATTRIBUTES,
        )
        desc = await handle.describe()
        assert await desc.memo() == START_MEMO
        assert desc.typed_search_attributes.get(SA_KEYWORD) == "at-start"
        assert desc.typed_search_attributes.get(SA_INT) == 7
        assert list(desc.typed_search_attributes.get(SA_KEYWORD_LIST)) == ["a", "b"]
        await handle.signal(UpsertWorkflow.finish)
        result = await handle.result()
    # The workflow sees the same values.
    assert result == {"memo": START_MEMO, "keyword": "at-start", "int": 7}
    # They are part of the started event, and stay after the workflow closed.
    started = (await history_events(handle))[0].workflow_execution_started_event_attributes
    assert set(started.memo.fields) == set(START_MEMO)
    assert {"VisKeyword", "VisInt", "VisKeywordList"} <= set(started.search_attributes.indexed_fields)
    closed = await handle.describe()
    assert await closed.memo() == START_MEMO
    assert closed.typed_search_attributes.get(SA_KEYWORD) == "at-start"


async def test_upserted_memo_and_search_attributes(sa_client):
    client = sa_client
    tq = unique("tq")
    expected_memo = {"changed": "new", "kept": {"k": True}, "added": {"nested": [1, 2]}}
    async with new_worker(client, tq, workflows=[UpsertWorkflow]):
        handle = await client.start_workflow(
            UpsertWorkflow.run, "upsert", id=unique("wf-upsert"), task_queue=tq,
            memo=START_MEMO, search_attributes=START_ATTRIBUTES,
        )
        events = await wait_for_event(handle, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES")
        desc = await handle.describe()
        assert await desc.memo() == expected_memo
        assert desc.typed_search_attributes.get(SA_KEYWORD) == "upserted"
        assert desc.typed_search_attributes.get(SA_INT) == 42
        # Unsetting removes the attribute.
        assert desc.typed_search_attributes.get(SA_KEYWORD_LIST) is None
        await handle.signal(UpsertWorkflow.finish)
        result = await handle.result()
    assert result == {"memo": expected_memo, "keyword": "upserted", "int": 42}

    names = [event_name(e.event_type) for e in events]
    # Both are recorded by the first workflow task's completion, memo first.
    assert names[4:6] == ["WORKFLOW_PROPERTIES_MODIFIED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]
    modified = events[4].workflow_properties_modified_event_attributes
    assert modified.workflow_task_completed_event_id == 4
    assert set(modified.upserted_memo.fields) == {"added", "changed", "removed"}
    upserted = events[5].upsert_workflow_search_attributes_event_attributes
    assert upserted.workflow_task_completed_event_id == 4
    assert {"VisKeyword", "VisInt", "VisKeywordList"} <= set(upserted.search_attributes.indexed_fields)

    closed = await handle.describe()
    assert await closed.memo() == expected_memo
    assert closed.typed_search_attributes.get(SA_KEYWORD) == "upserted"
    assert closed.typed_search_attributes.get(SA_INT) == 42


async def test_unregistered_search_attribute_at_start_is_rejected(sa_client):
    with pytest.raises(RPCError) as exc_info:
        await sa_client.start_workflow(
            UpsertWorkflow.run, "none", id=unique("wf-bad-sa"), task_queue=unique("tq"),
            search_attributes=TypedSearchAttributes([SearchAttributePair(UNREGISTERED, "x")]),
        )
    assert exc_info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "NoSuchSearchAttribute" in exc_info.value.message


async def test_unregistered_search_attribute_upsert_fails_the_task(sa_client):
    client = sa_client
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[UpsertWorkflow]):
        handle = await client.start_workflow(
            UpsertWorkflow.run, "unregistered", id=unique("wf-bad-upsert"), task_queue=tq
        )
        events = await wait_for_event(handle, "WORKFLOW_TASK_FAILED")
        await handle.terminate(reason="cleanup")
    # The server refuses the task completion and records the task as failed.
    failed = events_named(events, "WORKFLOW_TASK_FAILED")[0].workflow_task_failed_event_attributes
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
    assert "NoSuchSearchAttribute" in failed.failure.message
    assert failed.failure.HasField("server_failure_info")
    assert "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in [event_name(e.event_type) for e in events]
