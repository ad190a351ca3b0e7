"""Three Chronicle nodes (config/cluster) on one PostgreSQL or MySQL database: they split
the history shards and the task queues, and clients and workers may use any — a call about a workflow runs
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
from temporalio.api.batch.v1 import BatchOperationSignal
from temporalio.api.enums.v1 import BatchOperationState, EventType
from temporalio.api.workflowservice.v1 import (
    DescribeBatchOperationRequest,
    StartBatchOperationRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

import backends
from conftest import _chronicle_bin, _free_port, _target
from helpers import FAST_RETRY, eventually, history_events, new_worker, unique

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


@workflow.defn
class Gate:
    """Counts the approvals it is sent until it is closed."""

    def __init__(self) -> None:
        self.approvals = 0
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        return self.approvals

    @workflow.signal
    def approve(self) -> None:
        self.approvals += 1

    @workflow.signal
    def close(self) -> None:
        self.closed = True


EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "cluster"
SHARDS = 64  # config/cluster's shard_count


class Node:
    """One `chronicle server start` process of the cluster, from config/cluster/NAME.toml
    with this test's port, database and faster heartbeats laid over it."""

    def __init__(
        self, name: str, directory: Path, kind: str, dsn: str, config: str | None = None, **env: str
    ) -> None:
        self.name = name
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        self.config = EXAMPLE / f"{config or name}.toml"
        self.env = {
            **os.environ,
            "CHRONICLE_SERVER_PORT": str(self.port),
            "CHRONICLE_PERSISTENCE_BACKEND": kind,
            "CHRONICLE_PERSISTENCE_DSN": dsn,
            "CHRONICLE_PERSISTENCE_MAX_CONNECTIONS": "8",
            "CHRONICLE_CLUSTER_HEARTBEAT_INTERVAL_MS": "200",
            "CHRONICLE_CLUSTER_LEASE_MS": "2000",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [_chronicle_bin(), "server", "start", "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=self.env,
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

    def wait_ready(self) -> None:
        """Waits for the node's "ready" line (a node without the frontend role has no
        client API to probe)."""
        deadline = time.monotonic() + 20
        while not re.search(r"Chronicle \S+ ready", self.log.read_text(errors="replace")):
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                raise RuntimeError(f"{self.name} not ready:\n{self.tail()}")
            time.sleep(0.1)

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

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def claimed(self, job_id: str) -> int:
        """How many times this node claimed the internal worker job `job_id`."""
        text = self.log.read_text(errors="replace")
        return len(re.findall(rf"job claimed job_id={re.escape(job_id)} ", text))

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture
def cluster(request):
    kind = backends.backend()
    if _target() != "chronicle" or kind == "sqlite":
        pytest.skip("a cluster runs on PostgreSQL or MySQL (CHRONICLE_TEST_BACKEND)")
    name, dsn = backends.create_database(kind)
    directory = Path(tempfile.mkdtemp(prefix="chronicle-e2e-cluster-"))
    nodes = [Node(f"node-{i}", directory, kind, dsn) for i in (1, 2, 3)]
    # Nodes of other roles, from node-1's file with their own id (test_nodes_play_their_roles).
    for member, services in getattr(request, "param", {}).items():
        nodes.append(
            Node(member, directory, kind, dsn, config="node-1", CHRONICLE_CLUSTER_MEMBER_ID=member,
                 CHRONICLE_CLUSTER_SERVICES=services)
        )
    migrate = [_chronicle_bin(), "schema", "migrate", "--config", str(nodes[0].config)]
    subprocess.run(migrate, check=True, capture_output=True, timeout=60, env=nodes[0].env)
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_ready()  # each node is up and serving before the test begins
    yield nodes
    for node in nodes:
        node.stop()
    failed = any("panicked" in node.tail() for node in nodes)
    backends.drop_database(kind, name)
    if not failed:
        shutil.rmtree(directory, ignore_errors=True)
    assert not failed, "\n".join(node.tail() for node in nodes)


async def test_clients_and_workers_may_use_any_node(cluster) -> None:
    a, b, c = cluster
    client_a, client_b, client_c = await a.client(), await b.client(), await c.client()
    # Both nodes are members before the test relies on the split.
    await asyncio.sleep(1.0)
    queue = unique("cluster")
    ids = [unique("order") for _ in range(WORKFLOWS)]
    # The worker polls node 1 only; workflows start through node 2, are signalled and
    # queried through node 3, and read through node 1.
    async with new_worker(client_a, queue, workflows=[Order], activities=[charge]):
        handles = [
            await client_b.start_workflow(Order.run, wid, id=wid, task_queue=queue) for wid in ids
        ]
        for wid in ids:
            on_c = client_c.get_workflow_handle(wid)
            await asyncio.wait_for(_charged(on_c), 30)
            assert await on_c.query(Order.is_approved) is False
            await on_c.signal(Order.approve)
        for handle, wid in zip(handles, ids):
            result = await asyncio.wait_for(handle.result(), 30)
            assert result == f"charged {wid}, approved"
            described = await client_a.get_workflow_handle(wid).describe()
            assert described.status.name == "COMPLETED"
            events = await history_events(client_a.get_workflow_handle(wid))
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            closes = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
            assert len(closes) == 1
    # Each node served a share of the shards, so most calls above were forwarded.
    owned = [node.owned_shards() for node in cluster]
    assert all(owned), owned
    assert sum(len(o) for o in owned) == SHARDS and set().union(*owned) == set(range(SHARDS)), owned


async def _charged(handle) -> None:
    while True:
        events = await history_events(handle)
        if any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in events):
            return
        await asyncio.sleep(0.1)


@workflow.defn
class Steps:
    """Activities around a timer and a signal, so a node's loss lands in the middle of each."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, order: str) -> str:
        opts = dict(start_to_close_timeout=timedelta(seconds=10), retry_policy=FAST_RETRY)
        first = await workflow.execute_activity(charge, f"{order}/1", **opts)
        await workflow.sleep(1.5)
        await workflow.wait_condition(lambda: self.go)
        second = await workflow.execute_activity(charge, f"{order}/2", **opts)
        return f"{first}; {second}"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


UNDER_LOAD = 100


async def _under_load(cluster, disturb) -> None:
    """Workflows in flight through node 1 while `disturb(nodes)` happens to the others and
    each workflow is signalled; each completes with its exact result, each activity, timer
    and signal recorded once."""
    client = await cluster[0].client()
    await asyncio.sleep(1.0)
    queue = unique("load")
    ids = [unique("steps") for _ in range(UNDER_LOAD)]

    async def signal_all() -> None:
        for wid in ids:
            await client.get_workflow_handle(wid).signal(Steps.proceed)

    async with new_worker(client, queue, workflows=[Steps], activities=[charge]):
        handles = [await client.start_workflow(Steps.run, wid, id=wid, task_queue=queue) for wid in ids]
        await asyncio.gather(disturb(cluster), signal_all())
        for handle, wid in zip(handles, ids):
            try:
                result = await asyncio.wait_for(handle.result(), 60)
            except asyncio.TimeoutError:
                events = await history_events(handle)
                names = [EventType.Name(e.event_type) for e in events]
                raise AssertionError(f"{wid} stuck after {names}") from None
            assert result == f"charged {wid}/1; charged {wid}/2"
            events = await history_events(handle)
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            count = lambda kind: sum(1 for e in events if e.event_type == kind)  # noqa: E731
            recorded = (
                count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
                count(EventType.EVENT_TYPE_TIMER_FIRED),
                count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
                count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
            )
            assert recorded == (2, 1, 1, 1), wid


async def test_a_rolling_restart_fails_no_workflow(cluster) -> None:
    async def restart_two(nodes) -> None:
        for node in nodes[1:]:
            node.stop()
            node.start()
            await node.client()
            await asyncio.sleep(0.5)

    await _under_load(cluster, restart_two)
    for node in cluster[1:]:
        assert "handing work over to the other members" in node.log.read_text(errors="replace")


async def test_a_node_killed_under_load_loses_nothing(cluster) -> None:
    async def kill(nodes) -> None:
        await asyncio.sleep(0.3)
        nodes[1].kill9()

    await _under_load(cluster, kill)
    assert cluster[0].owned_shards() | cluster[2].owned_shards() == set(range(SHARDS))


async def test_a_paused_node_past_its_lease_writes_nothing_and_rejoins(cluster) -> None:
    async def pause(nodes) -> None:
        await asyncio.sleep(0.3)
        nodes[1].pause()
        await asyncio.sleep(4)  # twice the lease: the others take its shards
        nodes[1].resume()

    await _under_load(cluster, pause)
    # Back in, it owns a share again; what it held while paused it gave up.
    for _ in range(50):
        if cluster[1].owned_shards():
            break
        await asyncio.sleep(0.2)
    assert cluster[1].owned_shards()
    assert "shard released" in cluster[1].log.read_text(errors="replace")
    # In the database: every run's events are 1..n with none lost or written twice, and no
    # task of the finished load is left in a backlog a stale owner wrote to.
    gaps = _query(cluster, "SELECT count(*) FROM (SELECT run_id FROM history_events GROUP BY run_id "
                           "HAVING count(*) <> max(event_id) OR min(event_id) <> 1) AS gaps")
    assert gaps == "0"
    assert _query(cluster, "SELECT count(DISTINCT run_id) FROM history_events") == str(UNDER_LOAD)

    async def backlog() -> str:
        return _query(cluster, "SELECT count(*) FROM queue_tasks WHERE task_queue LIKE 'load-%'")

    await eventually(backlog, lambda left: left == "0", what="the load's backlog rows to go")


def _query(cluster, statement: str) -> str:
    """One value from the cluster's database, read directly."""
    env = cluster[0].env
    database = env["CHRONICLE_PERSISTENCE_DSN"].rsplit("/", 1)[1]
    return backends.sql(env["CHRONICLE_PERSISTENCE_BACKEND"], statement, database).strip()


async def test_a_node_joining_under_load_takes_its_share(cluster) -> None:
    async def join(nodes) -> None:
        nodes[2].stop()
        await asyncio.sleep(0.5)
        nodes[2].start()
        await nodes[2].client()

    await _under_load(cluster, join)
    for _ in range(50):
        if cluster[2].owned_shards():
            break
        await asyncio.sleep(0.2)
    assert cluster[2].owned_shards()


@pytest.mark.parametrize(
    "cluster", [{"gateway": '["frontend"]', "backend": '["history", "matching", "worker"]'}],
    indirect=True,
)
async def test_nodes_play_their_roles(cluster) -> None:
    """A frontend-only node serves clients and workers and owns no shard; a node without the
    frontend role serves the other nodes only."""
    gateway, backend = cluster[3], cluster[4]
    client = await gateway.client()
    await asyncio.sleep(1.0)
    queue = unique("roles")
    ids = [unique("order") for _ in range(WORKFLOWS)]
    async with new_worker(client, queue, workflows=[Order], activities=[charge]):
        handles = [await client.start_workflow(Order.run, wid, id=wid, task_queue=queue) for wid in ids]
        for handle in handles:
            await asyncio.wait_for(_charged(handle), 30)
            await handle.signal(Order.approve)
        for handle, wid in zip(handles, ids):
            assert await asyncio.wait_for(handle.result(), 30) == f"charged {wid}, approved"
    assert not gateway.owned_shards()
    owned = [node.owned_shards() for node in cluster if node is not gateway]
    assert set().union(*owned) == set(range(SHARDS)) and backend.owned_shards(), owned
    with pytest.raises(Exception) as refused:
        await asyncio.wait_for(Client.connect(backend.address), 10)
    # The SDK's connect calls GetSystemInfo, which a node without the frontend role lacks.
    assert "nimplemented" in str(refused.value), refused.value


async def test_a_batch_job_runs_on_one_node_and_moves_when_it_dies(cluster) -> None:
    """A paced batch signal over many workflows: one node claims it; killed mid-way, one
    other claims it and goes on; every workflow gets the signal exactly once (signals to
    runs whose shards moved with the dead node included)."""
    client = await cluster[0].client()
    await asyncio.sleep(1.0)
    queue = unique("batch")
    ids = [unique("gate") for _ in range(60)]
    # No worker yet: the signals wait in the histories, and the worker comes once the job
    # is done, on a node that stayed.
    for wid in ids:
        await client.start_workflow(Gate.run, id=wid, task_queue=queue)
    job_id = unique("job")
    await client.workflow_service.start_batch_operation(
        StartBatchOperationRequest(
            namespace="default", job_id=job_id, reason="approve all",
            visibility_query=f'TaskQueue = "{queue}"',
            signal_operation=BatchOperationSignal(signal="approve"),
            max_operations_per_second=10,
        )
    )
    owner = await _claimer(cluster, job_id)
    await asyncio.sleep(2.5)  # a third of the way through, at 10 a second
    owner.kill9()
    survivors = [node for node in cluster if node is not owner]
    client = await survivors[0].client()
    deadline = time.monotonic() + 60
    while True:
        described = await client.workflow_service.describe_batch_operation(
            DescribeBatchOperationRequest(namespace="default", job_id=job_id)
        )
        if described.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING:
            break
        assert time.monotonic() < deadline, described
        await asyncio.sleep(0.5)
    assert described.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED, described
    assert (described.complete_operation_count, described.failure_operation_count) == (60, 0)
    assert sum(node.claimed(job_id) for node in survivors) == 1, "claimed again by one survivor"
    async with new_worker(client, queue, workflows=[Gate]):
        for wid in ids:
            await client.get_workflow_handle(wid).signal(Gate.close)
        for wid in ids:
            assert await asyncio.wait_for(client.get_workflow_handle(wid).result(), 30) == 1, wid


async def test_a_schedule_runs_on_one_node_and_moves_when_it_dies(cluster) -> None:
    """A schedule created through one node and read through the others runs on one node;
    killed, one survivor takes it on from its stored state and its actions go on, each
    action one workflow (a start repeated by the new owner finds the run it made)."""
    clients = [await node.client() for node in cluster]
    await asyncio.sleep(1.0)
    schedule_id, queue = unique("sched"), unique("sched-queue")
    await clients[0].create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow("Gate", id=f"wf-{schedule_id}", task_queue=queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        ),
    )
    owner = await _claimer(cluster, schedule_id)

    async def actions(client: Client) -> int:
        """Its action count; -1 while its calls reach a dead owner (until its lease lapses)."""
        try:
            return (await client.get_schedule_handle(schedule_id).describe()).info.num_actions
        except RPCError as e:
            if e.status != RPCStatusCode.UNAVAILABLE:
                raise
            return -1

    before = await eventually(lambda: actions(clients[1]), lambda n: n >= 3, what="three actions")
    owner.kill9()
    survivors = [node for node in cluster if node is not owner]
    client = await survivors[0].client()
    await eventually(
        lambda: actions(client), lambda n: n >= before + 3, timeout=60,
        what="actions going on after the owner died",
    )
    assert sum(node.claimed(schedule_id) for node in survivors) == 1, "claimed again by one survivor"
    handle = client.get_schedule_handle(schedule_id)
    await handle.pause()
    total = await actions(client)
    query = f"TemporalScheduledById = '{schedule_id}'"

    async def started() -> int:
        return (await client.count_workflows(query)).count

    await eventually(started, lambda n: n == total, what="one workflow per action")
    await handle.delete()


async def _claimer(cluster, job_id: str) -> Node:
    """The one node that claimed the job (waiting for it to)."""
    for _ in range(100):
        claimers = [node for node in cluster if node.claimed(job_id)]
        if claimers:
            assert len(claimers) == 1 and claimers[0].claimed(job_id) == 1, [n.name for n in claimers]
            return claimers[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no node claimed the job")
