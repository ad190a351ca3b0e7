"""Abusive visibility queries: 20-50 KB chains, deep nesting, repeated NOT, a 10,000-item
IN list, literals out of every range, List Open / List Closed with far-future times.

Each gets InvalidArgument, or the right answer where the reference gives one, and the
server survives them all: a workflow started before the abuse completes after it, the
health check passes and an ordinary query still answers.

Where the two servers differ by design the case names what each answers: Chronicle bounds
a query at 32 KiB and 64 levels of nesting (config `[limits] query_length / query_depth`)
and treats AND / OR chains as flat lists, so a 30 KB chain works; the reference refuses
chains past a few hundred terms ("max ast depth reached") but takes any length.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import workflow
from temporalio.api.filter.v1 import StartTimeFilter, WorkflowExecutionFilter
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    ListClosedWorkflowExecutionsRequest,
    ListOpenWorkflowExecutionsRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from helpers import eventually, list_ids, new_worker, unique

# The seconds of 9999-12-31T23:59:59Z and of 0001-01-01T00:00:00Z: protobuf Timestamp's range.
LATEST_TIMESTAMP = 253_402_300_799
EARLIEST_TIMESTAMP = -62_135_596_800


@workflow.defn
class WaitsForRelease:
    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.released)
        return "survived"

    @workflow.signal
    def release(self) -> None:
        self.released = True


class Expect(enum.Enum):
    INVALID = "InvalidArgument on both servers"
    ONLY_THE_WORKFLOW = "exactly the workflow on both servers"
    NOTHING = "no rows on both servers"
    # Chronicle finds the workflow; the reference may refuse the query's depth.
    CHRONICLE_FINDS = "the workflow on Chronicle; the workflow or InvalidArgument on the reference"
    # Chronicle refuses the query's length; the reference finds the workflow.
    CHRONICLE_REFUSES = "InvalidArgument on Chronicle; the workflow or InvalidArgument on the reference"


@dataclass
class Case:
    name: str
    query: str
    expect: Expect
    # A piece of Chronicle's message that says what was wrong.
    message: str = ""


def chain(term: str, separator: str, size: int) -> str:
    """`term separator term ...`, about `size` bytes long."""
    return separator.join([term] * (size // (len(term) + len(separator)) + 1))


def cases(wid: str) -> list[Case]:
    this = f"WorkflowId = '{wid}'"
    return [
        Case("40 KB AND chain", chain(this, " AND ", 40_000), Expect.CHRONICLE_REFUSES, "bytes long"),
        Case("40 KB OR chain", chain(this, " OR ", 40_000), Expect.CHRONICLE_REFUSES, "bytes long"),
        Case(
            "10,000-term chain",
            " AND ".join(["WorkflowId = 'a'"] * 10_000),
            Expect.INVALID,
            "bytes long",
        ),
        Case("30 KB AND chain", chain(this, " AND ", 30_000), Expect.CHRONICLE_FINDS),
        Case("NOT x 5000", "NOT " * 5000 + this, Expect.INVALID, "nest deeper than the limit of 64"),
        Case("( x 5000", "(" * 5000 + this + ")" * 5000, Expect.INVALID, "nest deeper"),
        Case("NOT ( x 3000", "NOT (" * 3000 + this + ")" * 3000, Expect.INVALID, "nest deeper"),
        Case("( x 64", "(" * 64 + this + ")" * 64, Expect.ONLY_THE_WORKFLOW),
        Case("NOT NOT x 32", "NOT NOT " * 32 + this, Expect.ONLY_THE_WORKFLOW),
        Case("( x 65", "(" * 65 + this + ")" * 65, Expect.CHRONICLE_REFUSES, "limit of 64"),
        Case(
            "10,000 ints IN",
            f"{this} OR HistoryLength IN ({','.join(['-1'] * 10_000)})",
            Expect.ONLY_THE_WORKFLOW,
        ),
        Case(
            "10,000 keywords IN (50 KB)",
            f"WorkflowId IN ('{wid}'" + ", 'a'" * 10_000 + ")",
            Expect.CHRONICLE_REFUSES,
            "bytes long",
        ),
        Case("duration past i64", "ExecutionDuration > '99999999999999999999h'", Expect.INVALID, "duration"),
        Case("duration just past i64", "ExecutionDuration > '2562048h'", Expect.INVALID, "duration"),
        Case("duration number past i64", "ExecutionDuration > 99999999999999999999", Expect.INVALID),
        Case("year 99999", "StartTime > '99999-01-01T00:00:00Z'", Expect.INVALID, "datetime"),
        Case("year 10000", "StartTime < '10000-01-01T00:00:00Z'", Expect.INVALID, "datetime"),
        Case("year 9999", f"{this} AND StartTime < '9999-12-31T23:59:59Z'", Expect.ONLY_THE_WORKFLOW),
        Case("year 1", f"{this} AND StartTime > '0001-01-01T00:00:00Z'", Expect.ONLY_THE_WORKFLOW),
        Case("after year 9999", f"{this} AND StartTime > '9999-12-31T23:59:59Z'", Expect.NOTHING),
        Case("int past i64", f"{this} OR HistoryLength > 99999999999999999999", Expect.ONLY_THE_WORKFLOW),
        Case("double past f64", "HistoryLength > 1e400", Expect.INVALID),
    ]


async def answer(client: Client, query: str) -> list[str] | RPCStatusCode:
    """The workflow ids a List finds, or the status it failed with; Count must agree."""
    service = client.workflow_service
    try:
        page = await service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=client.namespace, query=query)
        )
    except RPCError as e:
        assert e.status == RPCStatusCode.INVALID_ARGUMENT, f"{e.status}: {e}"
        return e.status
    count = await service.count_workflow_executions(
        CountWorkflowExecutionsRequest(namespace=client.namespace, query=query)
    )
    ids = [e.execution.workflow_id for e in page.executions]
    assert count.count == len(ids)
    return ids


async def refusal(client: Client, query: str) -> str:
    """Chronicle's InvalidArgument message for a query."""
    try:
        await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(namespace=client.namespace, query=query)
        )
    except RPCError as e:
        assert e.status == RPCStatusCode.INVALID_ARGUMENT, f"{e.status}: {e}"
        return e.message
    raise AssertionError("the query was answered")


def acceptable(case: Case, got: list[str] | RPCStatusCode, wid: str, reference: bool) -> bool:
    invalid = got == RPCStatusCode.INVALID_ARGUMENT
    found = got == [wid]
    return {
        Expect.INVALID: invalid,
        Expect.ONLY_THE_WORKFLOW: found,
        Expect.NOTHING: got == [],
        Expect.CHRONICLE_FINDS: found or (reference and invalid),
        Expect.CHRONICLE_REFUSES: invalid or (reference and found),
    }[case.expect]


async def test_abusive_queries_are_refused_and_the_server_survives(client: Client, server) -> None:
    task_queue = unique("tq-abuse")
    async with new_worker(client, task_queue, workflows=[WaitsForRelease]):
        wid = unique("wf-abuse")
        handle = await client.start_workflow(WaitsForRelease.run, id=wid, task_queue=task_queue)
        await eventually(lambda: list_ids(client, f"WorkflowId = '{wid}'"), lambda ids: ids == [wid])

        wrong = []
        for case in cases(wid):
            got = await answer(client, case.query)
            if not acceptable(case, got, wid, server.is_reference):
                wrong.append(f"{case.name}: expected {case.expect.value}, got {got}")
            elif case.message and not server.is_reference:
                message = await refusal(client, case.query)
                if case.message not in message:
                    wrong.append(f"{case.name}: message {message!r} lacks {case.message!r}")
        assert not wrong, "\n".join(wrong)

        await handle.signal(WaitsForRelease.release)
        assert await asyncio.wait_for(handle.result(), 30) == "survived"
    assert await client.service_client.check_health()
    assert await list_ids(client, f"WorkflowId = '{wid}'") == [wid]


def start_filter(earliest: int | None = None, latest: int | None = None) -> StartTimeFilter:
    return StartTimeFilter(
        earliest_time=None if earliest is None else Timestamp(seconds=earliest),
        latest_time=None if latest is None else Timestamp(seconds=latest),
    )


async def legacy_list(client: Client, closed: bool, times: StartTimeFilter, wid: str):
    """The workflow ids List Open / List Closed find for `wid`, or the status they fail with."""
    only = WorkflowExecutionFilter(workflow_id=wid)
    service = client.workflow_service
    try:
        if closed:
            page = await service.list_closed_workflow_executions(
                ListClosedWorkflowExecutionsRequest(
                    namespace=client.namespace, start_time_filter=times, execution_filter=only
                )
            )
        else:
            page = await service.list_open_workflow_executions(
                ListOpenWorkflowExecutionsRequest(
                    namespace=client.namespace, start_time_filter=times, execution_filter=only
                )
            )
    except RPCError as e:
        return e.status
    return [e.execution.workflow_id for e in page.executions]


async def test_list_open_and_closed_take_extreme_start_times(client: Client) -> None:
    task_queue = unique("tq-legacy")
    async with new_worker(client, task_queue, workflows=[WaitsForRelease]):
        wid = unique("wf-legacy")
        handle = await client.start_workflow(WaitsForRelease.run, id=wid, task_queue=task_queue)
        await eventually(lambda: list_ids(client, f"WorkflowId = '{wid}'"), lambda ids: ids == [wid])
        absurd = [LATEST_TIMESTAMP + 1, 2**62, 2**63 - 1, -(2**62), -(2**63)]
        for closed in (False, True):
            for seconds in absurd:
                for times in (start_filter(earliest=seconds), start_filter(latest=seconds)):
                    got = await legacy_list(client, closed, times, wid)
                    assert got == RPCStatusCode.INVALID_ARGUMENT, (closed, seconds, got)
        whole_range = start_filter(EARLIEST_TIMESTAMP, LATEST_TIMESTAMP)
        assert await legacy_list(client, False, whole_range, wid) == [wid]
        assert await legacy_list(client, True, whole_range, wid) == []
        # (A latest time of exactly year 1 is Go's zero time, which the reference reads as
        # "no bound"; no assertion depends on it.)
        assert await legacy_list(client, False, start_filter(earliest=LATEST_TIMESTAMP), wid) == []
        await handle.signal(WaitsForRelease.release)
        assert await handle.result() == "survived"
    assert await client.service_client.check_health()
    assert await legacy_list(client, False, start_filter(0, LATEST_TIMESTAMP), f"{uuid.uuid4()}") == []
