"""Sticky execution: after its first workflow task a cached workflow's tasks go to the
worker's own sticky task queue, which is visible in the history and in DescribeTaskQueue."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from helpers import event_name, events_named, history_events, new_worker, unique

STEPS = 30


@activity.defn
async def step(index: int) -> int:
    return index


@workflow.defn
class StepsWorkflow:
    @workflow.run
    async def run(self, steps: int) -> int:
        total = 0
        for index in range(steps):
            total += await workflow.execute_activity(step, index, start_to_close_timeout=timedelta(seconds=10))
        return total


def _task_queues(events) -> list:
    return [e.workflow_task_scheduled_event_attributes.task_queue for e in events_named(events, "WORKFLOW_TASK_SCHEDULED")]


async def test_many_sequential_activities(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[StepsWorkflow], activities=[step]):
        handle = await client.start_workflow(StepsWorkflow.run, STEPS, id=unique("wf-steps"), task_queue=tq)
        assert await handle.result() == sum(range(STEPS))
    events = await history_events(handle)
    names = [event_name(e.event_type) for e in events]
    assert names.count("ACTIVITY_TASK_COMPLETED") == STEPS
    # One workflow task to start, one after each activity.
    assert names.count("WORKFLOW_TASK_SCHEDULED") == STEPS + 1
    assert names.count("WORKFLOW_TASK_STARTED") == STEPS + 1
    assert names.count("WORKFLOW_TASK_COMPLETED") == STEPS + 1
    assert not any(n in names for n in ("WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT"))
    for started in events_named(events, "WORKFLOW_TASK_STARTED"):
        scheduled = events[started.workflow_task_started_event_attributes.scheduled_event_id - 1]
        assert event_name(scheduled.event_type) == "WORKFLOW_TASK_SCHEDULED"
        assert started.event_id == scheduled.event_id + 1
    assert names[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_tasks_after_the_first_use_the_sticky_queue(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[StepsWorkflow], activities=[step]):
        handle = await client.start_workflow(StepsWorkflow.run, 3, id=unique("wf-sticky"), task_queue=tq)
        assert await handle.result() == 3
        queues = _task_queues(await history_events(handle))
        assert len(queues) == 4
        # The first task goes to the normal queue ...
        assert queues[0].name == tq and queues[0].kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
        # ... the rest to one sticky queue that remembers the normal one.
        sticky_names = {q.name for q in queues[1:]}
        assert len(sticky_names) == 1
        (sticky_name,) = sticky_names
        assert sticky_name != tq
        for q in queues[1:]:
            assert q.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY
            assert q.normal_name == tq
        # The worker polls its sticky queue.
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=sticky_name, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=tq),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        assert [p.identity for p in described.pollers] == [client.identity]


async def test_no_sticky_queue_without_a_workflow_cache(client):
    tq = unique("tq")
    async with new_worker(client, tq, workflows=[StepsWorkflow], activities=[step], max_cached_workflows=0):
        handle = await client.start_workflow(StepsWorkflow.run, 3, id=unique("wf-no-sticky"), task_queue=tq)
        assert await handle.result() == 3
    queues = _task_queues(await history_events(handle))
    assert len(queues) == 4
    assert all(q.name == tq and q.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL for q in queues)
