"""Two Chronicle nodes on one PostgreSQL or MySQL database: they split the history shards
and the task queues, and clients and workers may use either — a call about a workflow runs
on the node that owns its shard, a poll on the node that owns its queue, forwarded there by
the other."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

import backends
from conftest import _chronicle_bin, _free_port, _target
from helpers import FAST_RETRY, history_events, new_worker, unique

WORKFLOWS = 16


@activity.defn
async def charge(order: str) -> str:
    return f"charged {order}"


@workflow.defn
class Order:
    def __init__(self) -> None:
        self.approved = False

    @workflow.run
    async def run(self, order: str) -> str:
        receipt = await workflow.execute_activity(
            charge, order, start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY
        )
        await workflow.wait_condition(lambda: self.approved)
        return f"{receipt}, approved"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.query
    def is_approved(self) -> bool:
        return self.approved


class Node:
    """One `chronicle server start` process of the cluster."""

    def __init__(self, name: str, directory: Path, kind: str, dsn: str) -> None:
        self.name = name
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        self.config = directory / f"{name}.toml"
        self.config.write_text(
            backends.config(kind, dsn, self.port).replace("shard_count = 4", "shard_count = 8")
            + f'\n[cluster]\nmember_id = "{name}"\nheartbeat_interval_ms = 200\nlease_ms = 2000\n'
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [_chronicle_bin(), "server", "start", "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    async def client(self) -> Client:
        deadline = time.monotonic() + 20
        while True:
            try:
                return await asyncio.wait_for(Client.connect(self.address), 5)
            except Exception:
                if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                    raise RuntimeError(f"{self.name} not serving:\n{self.tail()}") from None
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def owned_shards(self) -> set[int]:
        """The shards this node holds, as its log tells of acquiring and releasing them."""
        owned: set[int] = set()
        for line in self.log.read_text(errors="replace").splitlines():
            if match := re.search(r"shard (acquired|released) shard=(\d+)", line):
                shard = int(match.group(2))
                (owned.add if match.group(1) == "acquired" else owned.discard)(shard)
        return owned

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def cluster():
    kind = backends.backend()
    if _target() != "chronicle" or kind == "sqlite":
        pytest.skip("a cluster runs on PostgreSQL or MySQL (CHRONICLE_TEST_BACKEND)")
    name, dsn = backends.create_database(kind)
    directory = Path(tempfile.mkdtemp(prefix="chronicle-e2e-cluster-"))
    nodes = [Node(n, directory, kind, dsn) for n in ("node-a", "node-b")]
    migrate = [_chronicle_bin(), "schema", "migrate", "--config", str(nodes[0].config)]
    subprocess.run(migrate, check=True, capture_output=True, timeout=60)
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()
    failed = any("panicked" in node.tail() for node in nodes)
    backends.drop_database(kind, name)
    if not failed:
        shutil.rmtree(directory, ignore_errors=True)
    assert not failed, "\n".join(node.tail() for node in nodes)


async def test_clients_and_workers_may_use_either_node(cluster) -> None:
    a, b = cluster
    client_a, client_b = await a.client(), await b.client()
    # Both nodes are members before the test relies on the split.
    await asyncio.sleep(1.0)
    queue = unique("cluster")
    ids = [unique("order") for _ in range(WORKFLOWS)]
    # The worker polls node A only; the workflows are started through node B.
    async with new_worker(client_a, queue, workflows=[Order], activities=[charge]):
        handles = [
            await client_b.start_workflow(Order.run, wid, id=wid, task_queue=queue) for wid in ids
        ]
        for wid in ids:
            on_a = client_a.get_workflow_handle(wid)
            await asyncio.wait_for(_charged(on_a), 30)
            assert await on_a.query(Order.is_approved) is False
            await on_a.signal(Order.approve)
        for handle, wid in zip(handles, ids):
            result = await asyncio.wait_for(handle.result(), 30)
            assert result == f"charged {wid}, approved"
            described = await client_a.get_workflow_handle(wid).describe()
            assert described.status.name == "COMPLETED"
            events = await history_events(client_a.get_workflow_handle(wid))
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            closes = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
            assert len(closes) == 1
    # Each node served a share of the shards, so about half the calls above were forwarded.
    owned_a, owned_b = a.owned_shards(), b.owned_shards()
    assert owned_a and owned_b and not owned_a & owned_b, (owned_a, owned_b)
    assert owned_a | owned_b == set(range(8))


async def _charged(handle) -> None:
    while True:
        events = await history_events(handle)
        if any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events):
            return
        await asyncio.sleep(0.1)
