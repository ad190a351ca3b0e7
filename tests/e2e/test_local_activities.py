"""Local activities: recorded as markers, and kept alive past the workflow task timeout by
workflow task heartbeats."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from helpers import event_name, events_named, history_events, new_worker, unique

# Per-workflow-id attempts of `flaky_local` (workers run in this process).
LOCAL_ATTEMPTS: dict[str, list[int]] = defaultdict(list)

SLOW_SECONDS = 3.5
TASK_TIMEOUT = timedelta(seconds=2)


@activity.defn
async def upper_local(text: str) -> str:
    return text.upper()


@activity.defn
async def flaky_local() -> str:
    info = activity.info()
    LOCAL_ATTEMPTS[info.workflow_id].append(info.attempt)
    if info.attempt < 3:
        raise RuntimeError(f"local attempt {info.attempt} fails")
    return f"ok on attempt {info.attempt}"


@activity.defn
async def slow_local(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@workflow.defn
class LocalActivityWorkflow:
    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "two":
            opts = dict(start_to_close_timeout=timedelta(seconds=5))
            first = await workflow.execute_local_activity(upper_local, "a", **opts)
            second = await workflow.execute_local_activity(upper_local, "b", **opts)
            return first + second
        if mode == "flaky":
            # schedule_to_close rather than start_to_close: the SDK leaks one start-to-close
            # timer per retried attempt, which panics in the SDK once the worker is gone.
            return await workflow.execute_local_activity(
                flaky_local,
                schedule_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50), backoff_coefficient=1.0),
            )
        return await workflow.execute_local_activity(
            slow_local, SLOW_SECONDS, start_to_close_timeout=timedelta(seconds=30)
        )


ACTIVITIES = [upper_local, flaky_local, slow_local]


def _marker_data(event) -> dict:
    details = event.marker_recorded_event_attributes.details
    return json.loads(details["data"].payloads[0].data)


async def test_local_activities_are_recorded_as_markers(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[LocalActivityWorkflow], activities=ACTIVITIES):
        handle = await client.start_workflow(LocalActivityWorkflow.run, "two", id=unique("wf-la"), task_queue=tq)
        assert await handle.result() == "AB"
    events = await history_events(handle)
    # Both ran inside the first workflow task: no activity tasks, just two markers.
    assert [event_name(e.event_type) for e in events] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "MARKER_RECORDED",
        "MARKER_RECORDED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    for event, result in zip(events[4:6], (b'"A"', b'"B"')):
        attrs = event.marker_recorded_event_attributes
        assert attrs.marker_name == "core_local_activity"
        assert attrs.workflow_task_completed_event_id == 4
        assert attrs.details["result"].payloads[0].data == result
        assert _marker_data(event)["activity_type"] == "upper_local"


async def test_local_activity_retries_stay_in_the_worker(client):
    tq, wf_id = unique("tq"), unique("wf-la-retry")
    async with new_worker(client, tq, workflows=[LocalActivityWorkflow], activities=ACTIVITIES):
        handle = await client.start_workflow(LocalActivityWorkflow.run, "flaky", id=wf_id, task_queue=tq)
        assert await handle.result() == "ok on attempt 3"
    assert LOCAL_ATTEMPTS[wf_id] == [1, 2, 3]
    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert not any(n.startswith("ACTIVITY_TASK") for n in names)
    (marker,) = events_named(events, "MARKER_RECORDED")
    assert _marker_data(marker)["attempt"] == 3
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_long_local_activity_heartbeats_the_workflow_task(client):
    """The local activity outlives the 2 s workflow task timeout; the worker keeps completing
    the task with force_create_new_workflow_task and the server hands it a new one each time."""
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[LocalActivityWorkflow], activities=ACTIVITIES):
        handle = await client.start_workflow(
            LocalActivityWorkflow.run, "slow", id=unique("wf-la-slow"), task_queue=tq, task_timeout=TASK_TIMEOUT
        )
        assert await handle.result() == f"slept {SLOW_SECONDS}"
    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert "WORKFLOW_TASK_TIMED_OUT" not in names
    assert "WORKFLOW_TASK_FAILED" not in names
    marker = names.index("MARKER_RECORDED")
    # At least one heartbeat task completed before the one that recorded the marker.
    assert names[:marker].count("WORKFLOW_TASK_COMPLETED") >= 2
    # Heartbeats are plain task cycles: nothing but workflow task events until the marker.
    assert set(names[1:marker]) == {"WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"}
    assert names[marker - 1] == "WORKFLOW_TASK_COMPLETED"
    assert names[marker:] == ["MARKER_RECORDED", "WORKFLOW_EXECUTION_COMPLETED"]
    for scheduled in events_named(events, "WORKFLOW_TASK_SCHEDULED"):
        attrs = scheduled.workflow_task_scheduled_event_attributes
        assert attrs.start_to_close_timeout.ToTimedelta() == TASK_TIMEOUT
