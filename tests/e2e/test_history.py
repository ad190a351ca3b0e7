"""Exact history shape of a one-activity workflow, including event cross-references."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from helpers import event_name, history_events, new_worker, unique


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class OneActivityWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            shout, text, start_to_close_timeout=timedelta(seconds=10)
        )


EXPECTED_EVENTS = [
    "WORKFLOW_EXECUTION_STARTED",  # 1
    "WORKFLOW_TASK_SCHEDULED",  # 2
    "WORKFLOW_TASK_STARTED",  # 3
    "WORKFLOW_TASK_COMPLETED",  # 4
    "ACTIVITY_TASK_SCHEDULED",  # 5
    "ACTIVITY_TASK_STARTED",  # 6
    "ACTIVITY_TASK_COMPLETED",  # 7
    "WORKFLOW_TASK_SCHEDULED",  # 8
    "WORKFLOW_TASK_STARTED",  # 9
    "WORKFLOW_TASK_COMPLETED",  # 10
    "WORKFLOW_EXECUTION_COMPLETED",  # 11
]


async def test_one_activity_history_shape(client):
    tq, wf_id = unique("tq"), unique("wf-history")
    async with new_worker(client, tq, workflows=[OneActivityWorkflow], activities=[shout]):
        handle = await client.start_workflow(OneActivityWorkflow.run, "quiet", id=wf_id, task_queue=tq)
        assert await handle.result() == "QUIET"
    events = await history_events(handle)

    assert [event_name(e.event_type) for e in events] == EXPECTED_EVENTS
    assert [e.event_id for e in events] == list(range(1, len(EXPECTED_EVENTS) + 1))
    times = [e.event_time.ToDatetime() for e in events]
    assert times == sorted(times), "event times must not go backwards"

    started = events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "OneActivityWorkflow"
    assert started.task_queue.name == tq
    assert started.attempt == 1
    assert started.original_execution_run_id == handle.result_run_id
    assert started.first_execution_run_id == handle.result_run_id

    # Workflow tasks: started -> scheduled, completed -> scheduled + started.
    for sched, start, done in ((2, 3, 4), (8, 9, 10)):
        assert events[start - 1].workflow_task_started_event_attributes.scheduled_event_id == sched
        completed = events[done - 1].workflow_task_completed_event_attributes
        assert (completed.scheduled_event_id, completed.started_event_id) == (sched, start)

    scheduled = events[4].activity_task_scheduled_event_attributes
    assert scheduled.activity_type.name == "shout"
    assert scheduled.workflow_task_completed_event_id == 4
    assert scheduled.start_to_close_timeout.ToTimedelta() == timedelta(seconds=10)
    assert scheduled.activity_id

    act_started = events[5].activity_task_started_event_attributes
    assert act_started.scheduled_event_id == 5
    assert act_started.attempt == 1

    act_done = events[6].activity_task_completed_event_attributes
    assert (act_done.scheduled_event_id, act_done.started_event_id) == (5, 6)

    wf_done = events[10].workflow_execution_completed_event_attributes
    assert wf_done.workflow_task_completed_event_id == 10
    assert not wf_done.new_execution_run_id
