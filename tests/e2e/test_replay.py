"""Replay: a workflow moves to a new worker process, which rebuilds its state from the full
history, including patch markers written by newer code. Workers run in subprocesses
(worker_process.py imports this module), so no workflow cache survives between them."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import TaskQueueKind, TimeoutType
from temporalio.common import SearchAttributeKey

from helpers import WorkerProcess, event_name, events_named, history_events, unique, wait_for_event

MODULE = "test_replay"
STICKY_TIMEOUT_S = 1.0


@activity.defn
async def worker_pid(stage: str) -> dict:
    return {"stage": stage, "pid": os.getpid()}


@workflow.defn
class HandOverWorkflow:
    """activity -> wait for `go` -> activity; each activity reports its worker's pid."""

    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> list[dict]:
        opts = dict(start_to_close_timeout=timedelta(seconds=10))
        before = await workflow.execute_activity(worker_pid, "before", **opts)
        await workflow.wait_condition(lambda: self._go)
        after = await workflow.execute_activity(worker_pid, "after", **opts)
        return [before, after]


@workflow.defn(name="PatchedWorkflow")
class PatchedWorkflowV1:
    """The code before the change."""

    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._go)
        return "v1"


@workflow.defn(name="PatchedWorkflow")
class PatchedWorkflowV2:
    """The code after the change, guarded by a patch."""

    def __init__(self) -> None:
        self._go = False

    @workflow.signal
    def go(self) -> None:
        self._go = True

    @workflow.run
    async def run(self) -> str:
        path = "new path" if workflow.patched("my-change") else "old path"
        await workflow.wait_condition(lambda: self._go)
        return f"v2 took the {path}"


def _worker(client, tq: str, *workflows: str, activities=()) -> WorkerProcess:
    return WorkerProcess(
        client, tq, MODULE, workflows=workflows, activities=activities, sticky_timeout=STICKY_TIMEOUT_S
    )


@pytest.mark.parametrize("shutdown", ["kill9", "graceful"])
async def test_new_worker_process_finishes_the_workflow(client, shutdown):
    tq = unique("tq")
    first = _worker(client, tq, "HandOverWorkflow", activities=["worker_pid"])
    await first.start()
    try:
        handle = await client.start_workflow(HandOverWorkflow.run, id=unique("wf-handover"), task_queue=tq)
        # Parked on the signal once the task after the first activity completed.
        await wait_for_event(handle, "WORKFLOW_TASK_COMPLETED", count=2, timeout=20)
    finally:
        if shutdown == "kill9":
            await first.kill9()
        else:
            await first.stop()

    async with _worker(client, tq, "HandOverWorkflow", activities=["worker_pid"]) as second:
        await handle.signal(HandOverWorkflow.go)
        before, after = await handle.result()
    # The first activity's result came out of the history replayed by the second process.
    assert before == {"stage": "before", "pid": first.pid}
    assert after == {"stage": "after", "pid": second.pid}
    assert first.pid != second.pid

    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert names.count("ACTIVITY_TASK_COMPLETED") == 2
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert "WORKFLOW_TASK_FAILED" not in names
    # The task for the signal went to the first worker's sticky queue ...
    signaled = names.index("WORKFLOW_EXECUTION_SIGNALED")
    sticky = events[signaled + 1]
    assert event_name(sticky.event_type) == "WORKFLOW_TASK_SCHEDULED"
    sticky_queue = sticky.workflow_task_scheduled_event_attributes.task_queue
    assert sticky_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY
    assert sticky_queue.normal_name == tq
    if shutdown == "kill9":
        # ... where nobody took it: after the sticky schedule-to-start timeout it timed out
        # and was scheduled again on the normal queue.
        assert names[signaled + 2 : signaled + 5] == [
            "WORKFLOW_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
        ]
        timed_out = events[signaled + 2].workflow_task_timed_out_event_attributes
        assert timed_out.scheduled_event_id == sticky.event_id
        assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        normal = events[signaled + 3].workflow_task_scheduled_event_attributes.task_queue
        assert normal.name == tq and normal.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
        started = events[signaled + 4]
    else:
        # ... but the graceful shutdown told the server that worker was gone, so the task
        # was handed to the normal queue's poller at once, without a timeout.
        assert names[signaled + 2] == "WORKFLOW_TASK_STARTED"
        assert "WORKFLOW_TASK_TIMED_OUT" not in names
        started = events[signaled + 2]
    attrs = started.workflow_task_started_event_attributes
    assert attrs.identity.startswith(f"{second.pid}@")


async def test_patch_marker_and_replay_across_versions(client):
    tq = unique("tq")
    # An execution started by the old code ...
    async with _worker(client, tq, "PatchedWorkflowV1"):
        old = await client.start_workflow("PatchedWorkflow", id=unique("wf-patch-old"), task_queue=tq)
        await wait_for_event(old, "WORKFLOW_TASK_COMPLETED", timeout=20)
    # ... and one started by the new code, which records the patch.
    async with _worker(client, tq, "PatchedWorkflowV2") as v2:
        new = await client.start_workflow("PatchedWorkflow", id=unique("wf-patch-new"), task_queue=tq)
        events = await wait_for_event(new, "WORKFLOW_TASK_COMPLETED", timeout=20)
        await v2.kill9()
    (marker,) = events_named(events, "MARKER_RECORDED")
    attrs = marker.marker_recorded_event_attributes
    assert attrs.marker_name == "core_patch"
    assert attrs.workflow_task_completed_event_id == 4
    assert json.loads(attrs.details["patch-data"].payloads[0].data) == {"id": "my-change", "deprecated": False}
    # The SDK also upserts the TemporalChangeVersion system search attribute with the patch.
    names = [event_name(e.event_type) for e in events]
    assert names[4:6] == ["MARKER_RECORDED", "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]
    upserted = events[5].upsert_workflow_search_attributes_event_attributes.search_attributes
    assert json.loads(upserted.indexed_fields["TemporalChangeVersion"].data) == ["my-change"]
    change_version = SearchAttributeKey.for_keyword_list("TemporalChangeVersion")
    assert list((await new.describe()).typed_search_attributes.get(change_version)) == ["my-change"]
    assert not events_named(await history_events(old), "MARKER_RECORDED")

    # A fresh process with the new code replays both: the old execution without the marker
    # keeps the old path, the new one with the marker keeps the new path.
    async with _worker(client, tq, "PatchedWorkflowV2"):
        await old.signal("go")
        await new.signal("go")
        assert await old.result() == "v2 took the old path"
        assert await new.result() == "v2 took the new path"
    for handle in (old, new):
        names = [event_name(e.event_type) for e in await history_events(handle)]
        assert "WORKFLOW_TASK_FAILED" not in names
        assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"
