"""Shared helpers for the end-to-end tests (imported by the test modules)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

# Short backoff so retry tests stay fast.
FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)
NO_RETRY = RetryPolicy(maximum_attempts=1)


def unique(prefix: str) -> str:
    """A unique task queue / workflow id so tests sharing a server don't collide."""
    return f"{prefix}-{uuid.uuid4()}"


def new_worker(
    client: Client,
    task_queue: str,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence = (),
) -> Worker:
    """An in-process worker; use as `async with new_worker(...):`.

    Workflows run unsandboxed: the sandbox adds nothing for protocol tests and
    would re-import the test modules.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


def event_name(event_type: int) -> str:
    """EVENT_TYPE_TIMER_FIRED -> TIMER_FIRED."""
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def history_event_types(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [event_name(e.event_type) for e in history.events]


async def history_events(handle: WorkflowHandle) -> list:
    return list((await handle.fetch_history()).events)
