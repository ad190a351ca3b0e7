"""Shared helpers for the end-to-end tests (imported by the test modules)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecution, WorkflowHandle
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

# Short backoff so retry tests stay fast.
FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)
NO_RETRY = RetryPolicy(maximum_attempts=1)

# Custom search attributes that the `sa_server` fixture registers through
# `server start-dev --search-attribute NAME=TYPE` (one of each type).
CUSTOM_SEARCH_ATTRIBUTES = {
    "VisKeyword": "Keyword",
    "VisText": "Text",
    "VisInt": "Int",
    "VisDouble": "Double",
    "VisBool": "Bool",
    "VisDatetime": "Datetime",
    "VisKeywordList": "KeywordList",
}
SA_KEYWORD = SearchAttributeKey.for_keyword("VisKeyword")
SA_TEXT = SearchAttributeKey.for_text("VisText")
SA_INT = SearchAttributeKey.for_int("VisInt")
SA_DOUBLE = SearchAttributeKey.for_float("VisDouble")
SA_BOOL = SearchAttributeKey.for_bool("VisBool")
SA_DATETIME = SearchAttributeKey.for_datetime("VisDatetime")
SA_KEYWORD_LIST = SearchAttributeKey.for_keyword_list("VisKeywordList")

# How long to wait for eventually-consistent visibility (the reference's
# visibility lags a little behind; Chronicle's is immediate).
VISIBILITY_TIMEOUT_S = 20.0

T = TypeVar("T")


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a private loop in another thread, so
    this also works when called from inside a running event loop (a test) or
    from a synchronous fixture."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def unique(prefix: str) -> str:
    """A unique task queue / workflow id so tests sharing a server don't collide."""
    return f"{prefix}-{uuid.uuid4()}"


def new_worker(
    client: Client,
    task_queue: str,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence = (),
    **options,
) -> Worker:
    """An in-process worker; use as `async with new_worker(...):`.

    Workflows run unsandboxed: the sandbox adds nothing for protocol tests and
    would re-import the test modules. `options` go to `Worker` as they are
    (e.g. max_cached_workflows=0).
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=UnsandboxedWorkflowRunner(),
        **options,
    )


def event_name(event_type: int) -> str:
    """EVENT_TYPE_TIMER_FIRED -> TIMER_FIRED."""
    return EventType.Name(event_type).removeprefix("EVENT_TYPE_")


async def history_event_types(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [event_name(e.event_type) for e in history.events]


async def history_events(handle: WorkflowHandle) -> list:
    return list((await handle.fetch_history()).events)


# -- visibility ------------------------------------------------------------


async def eventually(
    fetch: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    what: str = "condition",
    timeout: float = VISIBILITY_TIMEOUT_S,
    interval: float = 0.2,
) -> T:
    """Call `fetch` until `ok(value)` holds; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(interval)


async def list_executions(client: Client, query: str, *, page_size: int = 1000) -> list[WorkflowExecution]:
    return [wf async for wf in client.list_workflows(query, page_size=page_size)]


async def list_ids(client: Client, query: str) -> list[str]:
    """Workflow ids matching `query` (one entry per run, in server order)."""
    return [wf.id for wf in await list_executions(client, query)]


async def wait_for_ids(client: Client, query: str, expected: set[str], **kw) -> list[str]:
    """Poll `query` until it returns exactly the workflow ids in `expected`."""
    return await eventually(
        lambda: list_ids(client, query),
        lambda ids: sorted(ids) == sorted(expected),
        what=f"{query!r} to list {sorted(expected)}",
        **kw,
    )


def rfc3339(dt: datetime) -> str:
    """A datetime as an RFC 3339 UTC literal for visibility queries."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def quote(value: str) -> str:
    """A visibility-query string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


# -- waiting on a workflow -------------------------------------------------


async def wait_for_event(handle: WorkflowHandle, name: str, *, count: int = 1, timeout: float = 10.0) -> list:
    """Wait until `handle`'s history holds `count` events of type `name` (e.g. "TIMER_STARTED");
    returns the whole history."""
    return await eventually(
        lambda: history_events(handle),
        lambda events: len(events_named(events, name)) >= count,
        what=f"{count} x {name} in the history of {handle.id}",
        timeout=timeout,
        interval=0.05,
    )


async def wait_for_status(handle: WorkflowHandle, status, *, timeout: float = 10.0):
    """Wait until describe() reports `status` (a WorkflowExecutionStatus); returns the description."""
    return await eventually(
        handle.describe,
        lambda desc: desc.status == status,
        what=f"{handle.id} to be {status.name}",
        timeout=timeout,
        interval=0.05,
    )


def events_named(events: Sequence, name: str) -> list:
    """The events of type `name` (e.g. "WORKFLOW_TASK_COMPLETED"), in history order."""
    return [e for e in events if event_name(e.event_type) == name]


# -- workers in their own process --------------------------------------------


class WorkerProcess:
    """A worker in a subprocess (worker_process.py), so nothing of it (workflow cache, sticky
    queue) survives in the test process. Use as `async with WorkerProcess(...) as proc:`;
    `kill9()` ends it abruptly, `stop()` gracefully (the SDK's shutdown)."""

    SCRIPT = Path(__file__).resolve().parent / "worker_process.py"

    def __init__(
        self,
        client: Client,
        task_queue: str,
        module: str,
        *,
        workflows: Sequence[str] = (),
        activities: Sequence[str] = (),
        sticky_timeout: float | None = None,
    ) -> None:
        self.args = [
            str(self.SCRIPT), client.service_client.config.target_host, client.namespace, task_queue, module,
            "--workflows", ",".join(workflows), "--activities", ",".join(activities),
        ]
        if sticky_timeout is not None:
            self.args += ["--sticky-timeout", str(sticky_timeout)]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> WorkerProcess:
        self.proc = await asyncio.create_subprocess_exec(sys.executable, *self.args, stdout=asyncio.subprocess.PIPE)
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.kill9()
            raise AssertionError(f"worker process did not start (said {line!r}, exit code {self.proc.returncode})")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def kill9(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                await self.kill9()

    async def __aenter__(self) -> WorkerProcess:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.kill9()


# The abuse suites' witness: a timer of another workflow, armed before a flood, must fire no
# later than this after it was due, however the flood goes.
WITNESS_TIMER_S = 3
WITNESS_SLACK_S = 30


@workflow.defn
class WitnessSleeper:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(WITNESS_TIMER_S)
        return "woke"


async def armed_timer(client: Client) -> WorkflowHandle:
    """A workflow whose timer is armed; it fires server-side, no worker needed meanwhile."""
    tq = unique("tq-witness")
    async with new_worker(client, tq, workflows=[WitnessSleeper]):
        handle = await client.start_workflow(WitnessSleeper.run, id=unique("wf-witness"), task_queue=tq)
        await eventually(
            lambda: history_event_types(handle),
            lambda types: "TIMER_STARTED" in types,
            what="the witness timer to start",
        )
    return handle


async def assert_timer_fired(handle: WorkflowHandle, slack_s: float = WITNESS_SLACK_S) -> None:
    """The armed timer fired, and not more than `slack_s` after it was due."""
    events = await eventually(
        lambda: history_events(handle),
        lambda events: bool(events_named(events, "TIMER_FIRED")),
        timeout=WITNESS_TIMER_S + slack_s,
        what="the witness timer to fire",
    )
    started = events_named(events, "TIMER_STARTED")[0].event_time.ToDatetime()
    fired = events_named(events, "TIMER_FIRED")[0].event_time.ToDatetime()
    late = (fired - started).total_seconds() - WITNESS_TIMER_S
    assert late <= slack_s, f"a timer elsewhere fired {late:.1f}s late during the flood"
