"""Floods a server's memory bounds and reads its resident memory from /proc.

Each test starts a private server with a bound lowered through CHRONICLE_MEMORY_* /
CHRONICLE_LIMITS_*: big memos against the state cache's bytes, polls on many task queue
names against idle queue eviction, more concurrent long polls than a namespace may hold, and
health while the database is away. Throughout, the server stays up and a timer of another
workflow still fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import ResourceExhaustedCause, TaskQueueType
from temporalio.api.errordetails.v1 import ResourceExhaustedFailure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli import Cli
from conftest import _dispose, _start_server
from helpers import armed_timer, assert_timer_fired, eventually, unique

MIB = 1024 * 1024
# What a node holds beyond its bounded caches while flooded: request and response buffers of
# the calls in flight, SQLite's page cache, the allocator keeping freed pages for reuse.
MARGIN = 160 * MIB

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads resident memory from /proc"
)


@contextlib.contextmanager
def private_server(env: dict[str, str]):
    """A server of this test's own, started with `env` added to its environment."""
    handle = _start_server("memory", env=env)
    try:
        yield handle
    finally:
        _dispose(handle, keep_dir=False)


def rss(handle) -> int:
    """The server's resident memory in bytes."""
    for line in Path(f"/proc/{handle._proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def skip_reference(handle) -> None:
    if handle.is_reference:
        pytest.skip("measures and tunes Chronicle's own bounds")


async def bounded_gather(limit: int, calls) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(call):
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


@pytest.mark.timeout(600)
async def test_big_memos_stay_within_the_state_cache_bytes():
    cache_bytes = 32 * MIB
    with private_server({"CHRONICLE_MEMORY_STATE_CACHE_BYTES": str(cache_bytes)}) as server:
        skip_reference(server)
        client = await server.client()
        sleeper = await armed_timer(client)
        before = rss(server)
        memo = {"blob": os.urandom(1_900_000)}
        tq = unique("tq-memo")

        async def start(n: int):
            await client.start_workflow(
                "NeverPolled", id=unique(f"wf-memo-{n}"), task_queue=tq, memo=memo,
            )

        await bounded_gather(8, [lambda n=n: start(n) for n in range(200)])
        grown = rss(server) - before
        # Unbounded, the 200 states alone would hold 380 MB.
        assert grown < cache_bytes + MARGIN, f"RSS grew by {grown / MIB:.0f} MiB"
        await assert_timer_fired(sleeper)
        assert server.running


async def empty_poll(client: Client, queue: str, timeout: timedelta) -> None:
    try:
        await client.workflow_service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=queue), identity="flood",
            ),
            retry=False, timeout=timeout,
        )
    except RPCError as e:
        # The client may give up a moment before the server answers empty.
        if e.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise


async def pollers_of(client: Client, queue: str) -> list:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return list(response.pollers)


@pytest.mark.timeout(600)
async def test_polls_on_many_queue_names_are_forgotten():
    with private_server({"CHRONICLE_MEMORY_IDLE_QUEUE_SECS": "2"}) as server:
        skip_reference(server)
        client = await server.client()
        sleeper = await armed_timer(client)
        before = rss(server)
        names = [unique("tq-flood") for _ in range(20_000)]
        # Short, but long enough that the server answers before the client gives up: a flood
        # of streams the client resets itself trips HTTP/2's reset-flood protection.
        short = timedelta(seconds=1)
        await bounded_gather(250, [lambda q=q: empty_poll(client, q, short) for q in names])
        just_polled = unique("tq-flood")
        await empty_poll(client, just_polled, short)
        assert len(await pollers_of(client, just_polled)) == 1, "a queue just polled shows its poller"
        await eventually(
            lambda: asyncio.gather(*(pollers_of(client, q) for q in names[::1000])),
            lambda described: all(not pollers for pollers in described),
            timeout=30, what="idle queues to be forgotten",
        )
        assert rss(server) - before < MARGIN, f"RSS is {rss(server) / MIB:.0f} MiB"
        await assert_timer_fired(sleeper)
        assert server.running


def concurrent_limit(error: RPCError) -> bool:
    status = error.grpc_status
    for detail in status.details:
        failure = ResourceExhaustedFailure()
        if detail.Unpack(failure):
            return failure.cause == ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_CONCURRENT_LIMIT
    return False


@pytest.mark.timeout(300)
async def test_long_polls_beyond_the_namespace_limit_are_refused():
    limit = 20
    with private_server({"CHRONICLE_LIMITS_LONG_POLLS_PER_NAMESPACE": str(limit)}) as server:
        skip_reference(server)
        client = await server.client()
        sleeper = await armed_timer(client)
        queue = unique("tq-crowd")

        async def poll():
            try:
                await empty_poll(client, queue, timedelta(seconds=5))
                return None
            except RPCError as e:
                return e

        outcomes = await asyncio.gather(*(poll() for _ in range(limit * 2)))
        refused = [e for e in outcomes if e is not None]
        assert len(refused) >= limit, f"{len(refused)} of {limit * 2} refused"
        assert len(refused) < limit * 2, "the polls within the limit are served"
        for error in refused:
            assert error.status == RPCStatusCode.RESOURCE_EXHAUSTED, error
            assert concurrent_limit(error), error.grpc_status
        # Every permit came back: a full set of polls is admitted again.
        again = await asyncio.gather(*(poll() for _ in range(limit)))
        assert again == [None] * limit
        await assert_timer_fired(sleeper)
        assert server.running


def cluster_health(server) -> str:
    result = Cli(server).run_sync("operator", "cluster", "health", check=False)
    return result.stdout + result.stderr


@pytest.mark.timeout(120)
async def test_the_cli_health_check_answers_serving(server):
    assert "SERVING" in cluster_health(server)
    assert "NOT_SERVING" not in cluster_health(server)


@pytest.mark.timeout(240)
async def test_health_is_not_serving_while_the_database_is_away(monkeypatch: pytest.MonkeyPatch):
    if shutil.which("psql") is None:
        pytest.skip("needs PostgreSQL's psql")
    # This server is on PostgreSQL whatever the suite's backend: a database it can lose.
    monkeypatch.setenv("CHRONICLE_TEST_BACKEND", "postgres")
    with private_server({}) as server:
        skip_reference(server)
        client = await server.client()
        assert await client.service_client.check_health()
        server.block_database()
        try:
            await eventually(
                lambda: client.service_client.check_health(),
                lambda healthy: not healthy,
                timeout=20, what="NOT_SERVING while the database is blocked",
            )
            assert "NOT_SERVING" in cluster_health(server)
        finally:
            server.unblock_database()
        await eventually(
            lambda: client.service_client.check_health(),
            lambda healthy: healthy,
            timeout=30, what="SERVING once the database is back",
        )
        assert server.running

