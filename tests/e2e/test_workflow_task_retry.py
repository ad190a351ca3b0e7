"""A workflow task the server keeps refusing is retried slowly, and the retry is visible.

The first refusal (a bad command: here an upsert of a search attribute nobody registered)
fails the task with its cause in history. Later attempts of the same task are only
refused, as Temporal refuses them: the task stays started until its start-to-close
timeout, which grows from the fourth attempt on (5 s more, doubling). Without that, the
SDK (which sends the same commands on every attempt) and the server would trade the
task hundreds of times a second. The attempt in flight shows in history as Temporal
shows it: scheduled and started events after the first failure, carrying the attempt.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.common import SearchAttributeKey

from helpers import event_name, eventually, history_events, new_worker, unique

UNREGISTERED = SearchAttributeKey.for_keyword("ChronicleNeverRegistered")
TASK_TIMEOUT_S = 1


@workflow.defn
class UpsertsUnregisteredAttribute:
    @workflow.run
    async def run(self) -> None:
        workflow.upsert_search_attributes([UNREGISTERED.value_set("x")])


async def _attempt(handle) -> int:
    return (await handle.describe()).raw_description.pending_workflow_task.attempt


async def test_a_refused_workflow_task_is_retried_slowly_and_shown_in_history(client):
    task_queue = unique("wft-retry")
    async with new_worker(client, task_queue, workflows=[UpsertsUnregisteredAttribute]):
        handle = await client.start_workflow(
            UpsertsUnregisteredAttribute.run,
            id=unique("wft-retry"),
            task_queue=task_queue,
            task_timeout=timedelta(seconds=TASK_TIMEOUT_S),
        )
        # Attempts 2 and 3 each wait out the 1 s timeout; the fourth has 5 s more.
        await eventually(lambda: _attempt(handle), lambda a: a >= 4, what="fourth attempt", timeout=15)
        await asyncio.sleep(2)
        assert await _attempt(handle) == 4, "the fourth attempt must wait out its longer timeout"

        events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert names == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
    ], names
    failed = events[3].workflow_task_failed_event_attributes
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
    assert "ChronicleNeverRegistered" in failed.failure.message
    retry = events[4].workflow_task_scheduled_event_attributes
    assert retry.attempt == 4
    # 1 s plus the first slow-down (Temporal takes 80-100 % of 5 s, Chronicle all of it).
    timeout = retry.start_to_close_timeout.ToTimedelta().total_seconds()
    assert TASK_TIMEOUT_S + 4 <= timeout <= TASK_TIMEOUT_S + 5, timeout
    assert events[5].workflow_task_started_event_attributes.scheduled_event_id == events[4].event_id
