"""Floods one run can receive: thousands of signals while its workflow task is held by a
worker, thousands of commands in one completion. Each stays answerable, lands whole and in
order, costs about the same per event at the end as at the start, and leaves the timers of
other workflows on the server on time."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    RecordMarkerCommandAttributes,
)
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    PollWorkflowTaskQueueRequest,
    ResetWorkflowExecutionRequest,
    RespondWorkflowTaskCompletedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.service import RPCError, RPCStatusCode
from google.protobuf.duration_pb2 import Duration

from helpers import armed_timer, assert_timer_fired, event_name, unique

# Temporal's default signals-per-execution limit: the most one run may receive.
SIGNALS = 10_000
BATCH = 100
# Senders side by side, each sending its share in order.
LANES = 20
# The held workflow task times out after 120 s (Temporal's cap): where a commit is slow
# (PostgreSQL here takes ~12 ms a signal, all serialized on the one run) the flood stops short
# of SIGNALS after this long, and what was sent is checked the same way.
FLOOD_BUDGET_S = 90.0
MARKERS = 11_000
# A timer of another workflow may be late by this much at most while a flood runs.
TIMER_SLACK_S = 15.0


async def _start_raw(client, tq: str) -> WorkflowExecution:
    wf_id = unique("wf-flood")
    started = await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=wf_id,
            workflow_type=WorkflowType(name="Flooded"),
            task_queue=TaskQueue(name=tq),
            # The held workflow task must outlive the flood (Temporal caps this at 2 min).
            workflow_task_timeout=Duration(seconds=120),
            identity="chronicle-e2e",
            request_id=str(uuid.uuid4()),
        )
    )
    return WorkflowExecution(workflow_id=wf_id, run_id=started.run_id)


async def _poll(client, tq: str):
    while True:
        task = await client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=tq), identity="chronicle-e2e"
            )
        )
        if task.task_token:
            return task


async def _complete(client, task, commands=()):
    return await client.workflow_service.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace=client.namespace,
            task_token=task.task_token,
            commands=list(commands),
            identity="chronicle-e2e",
        )
    )


async def _history(client, execution: WorkflowExecution) -> list:
    events, token = [], b""
    while True:
        page = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace, execution=execution, next_page_token=token
            )
        )
        events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            return events


async def _signal(client, execution: WorkflowExecution, index: int) -> float:
    began = time.monotonic()
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=execution,
            signal_name="flood",
            input=Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=str(index).encode())]),
            identity="chronicle-e2e",
            request_id=f"flood-{index}",
        )
    )
    return time.monotonic() - began


async def _flood(client, execution: WorkflowExecution) -> dict[int, float]:
    """Sends up to SIGNALS signals from LANES senders within FLOOD_BUDGET_S; returns the
    latency of each signal sent by its index."""
    latencies: dict[int, float] = {}
    stop_at = time.monotonic() + FLOOD_BUDGET_S

    async def lane(first: int) -> None:
        for i in range(first, SIGNALS, LANES):
            if time.monotonic() > stop_at:
                return
            latencies[i] = await _signal(client, execution, i)

    await asyncio.gather(*(lane(j) for j in range(LANES)))
    assert len(latencies) >= 10 * BATCH, f"only {len(latencies)} signals in {FLOOD_BUDGET_S}s"
    return latencies


async def _with_a_timer_meanwhile(client, flood):
    """Awaits `flood` while another workflow's timer runs; the timer must fire on time."""
    witness = await armed_timer(client)
    result = await flood
    await assert_timer_fired(witness, TIMER_SLACK_S)
    return result


async def _terminate(client, execution: WorkflowExecution) -> None:
    await client.workflow_service.terminate_workflow_execution(
        TerminateWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=execution, reason="flood over"
        )
    )


async def _complete_held(client, held, reference: bool) -> str:
    """Completes the held task; returns the event that ended it. Temporal fails a running
    task whose buffer outgrows 100 events (flushing it), so there its completion is refused;
    Chronicle keeps the task and buffers them all."""
    try:
        await _complete(client, held)
        return "WORKFLOW_TASK_COMPLETED"
    except RPCError as e:
        if not reference or e.status != RPCStatusCode.NOT_FOUND:
            raise
        return "WORKFLOW_TASK_FAILED"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.timeout(900)
async def test_signals_buffered_behind_a_held_workflow_task_land_in_order(client, server):
    tq = unique("tq-flood")
    execution = await _start_raw(client, tq)
    held = await _poll(client, tq)
    latencies = await _with_a_timer_meanwhile(client, _flood(client, execution))
    by_index = [latencies[i] for i in sorted(latencies)]
    first, last = _mean(by_index[:BATCH]), _mean(by_index[-BATCH:])
    assert last < 5 * max(first, 0.002), f"signal cost grew: first {first * 1e3:.1f}ms, last {last * 1e3:.1f}ms"

    held_ended = await _complete_held(client, held, server.is_reference)
    events = await _history(client, execution)
    signals = [e for e in events if event_name(e.event_type) == "WORKFLOW_EXECUTION_SIGNALED"]
    indices = [int(s.workflow_execution_signaled_event_attributes.input.payloads[0].data) for s in signals]
    assert sorted(indices) == sorted(latencies), "every signal exactly once"
    for lane in range(LANES):
        in_lane = [i for i in indices if i % LANES == lane]
        assert in_lane == sorted(in_lane), f"lane {lane}'s signals out of order"
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    names = [event_name(e.event_type) for e in events]
    assert names.index(held_ended) < events.index(signals[0]), "signals wait for the held task"

    # The worker sees them all in its next task and may close the run.
    task = await _poll(client, tq)
    complete = Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(),
    )
    await _complete(client, task, [complete])
    last_event = (await _history(client, execution))[-1]
    assert event_name(last_event.event_type) == "WORKFLOW_EXECUTION_COMPLETED"


def _marker(index: int) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_RECORD_MARKER,
        record_marker_command_attributes=RecordMarkerCommandAttributes(
            marker_name=f"marker-{index}",
            details={"index": Payloads(payloads=[Payload(data=str(index).encode())])},
        ),
    )


@pytest.mark.timeout(600)
async def test_one_completion_with_eleven_thousand_markers_is_answered(client):
    tq = unique("tq-markers")
    execution = await _start_raw(client, tq)
    task = await _poll(client, tq)
    await _with_a_timer_meanwhile(client, _complete(client, task, [_marker(i) for i in range(MARKERS)]))

    events = await _history(client, execution)
    markers = [e for e in events if event_name(e.event_type) == "MARKER_RECORDED"]
    assert [m.marker_recorded_event_attributes.marker_name for m in markers] == [
        f"marker-{i}" for i in range(MARKERS)
    ]
    # Not wedged: the run still takes signals and can be terminated.
    await _signal(client, execution, 0)
    await _terminate(client, execution)
    last_event = (await _history(client, execution))[-1]
    assert event_name(last_event.event_type) == "WORKFLOW_EXECUTION_TERMINATED"


@pytest.mark.timeout(600)
async def test_a_run_flooded_with_buffered_signals_can_be_terminated(client):
    tq = unique("tq-flood")
    execution = await _start_raw(client, tq)
    await _poll(client, tq)
    count = SIGNALS // 10
    for i in range(count):
        await _signal(client, execution, i)
    await _terminate(client, execution)
    names = [event_name(e.event_type) for e in await _history(client, execution)]
    assert names.count("WORKFLOW_EXECUTION_SIGNALED") == count
    # The held task is failed before the buffered signals are written, then the run closes.
    assert names.index("WORKFLOW_TASK_FAILED") < names.index("WORKFLOW_EXECUTION_SIGNALED")
    assert names[-1] == "WORKFLOW_EXECUTION_TERMINATED"


async def test_a_reset_reapplies_signals_still_buffered(client):
    tq = unique("tq-flood")
    execution = await _start_raw(client, tq)
    await _complete(client, await _poll(client, tq))
    await _signal(client, execution, 0)
    await _poll(client, tq)
    count = 50
    for i in range(1, count):
        await _signal(client, execution, i)
    names = [event_name(e.event_type) for e in await _history(client, execution)]
    reset = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=execution,
            reason="flood reset",
            workflow_task_finish_event_id=names.index("WORKFLOW_TASK_COMPLETED") + 1,
            request_id=str(uuid.uuid4()),
        )
    )
    new_run = WorkflowExecution(workflow_id=execution.workflow_id, run_id=reset.run_id)
    signals = [
        int(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)
        for e in await _history(client, new_run)
        if event_name(e.event_type) == "WORKFLOW_EXECUTION_SIGNALED"
    ]
    assert signals == list(range(count))
    await _terminate(client, new_run)
