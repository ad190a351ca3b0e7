"""Visibility through the Python SDK: ListWorkflowExecutions / CountWorkflowExecutions
with Temporal's query language over system and custom search attributes.

Runs against `sa_server`, which registers one custom search attribute of each type
(helpers.CUSTOM_SEARCH_ATTRIBUTES) through `start-dev --search-attribute`. A
module-wide data set of six workflows with known attributes and final states is
built once; each query is scoped to the data set's task queue.

Reference quirks that the tests steer around (see the notes where they matter):
  * ORDER BY is rejected by the reference's SQLite visibility store; Chronicle
    means to support it (test_order_by asserts both behaviours by target).
  * Equality on a custom Datetime attribute does not match on the reference
    (its stored format differs from the literal's), so Datetime tests use ranges
    whose bounds are not equal to any stored value.
  * `!=` / NOT on Text and KeywordList attributes also match rows where the
    attribute is unset on the reference, unlike Keyword/Int/...; no test depends
    on that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload, SearchAttributes, WorkflowType
from temporalio.api.enums.v1 import IndexedValueType, WorkflowTaskFailedCause
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
    RemoveSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from helpers import (
    CUSTOM_SEARCH_ATTRIBUTES,
    SA_BOOL,
    SA_DATETIME,
    SA_DOUBLE,
    SA_INT,
    SA_KEYWORD,
    SA_KEYWORD_LIST,
    SA_TEXT,
    eventually,
    history_events,
    list_executions,
    list_ids,
    new_worker,
    quote,
    rfc3339,
    run_sync,
    unique,
    wait_for_ids,
)


@workflow.defn(name="VisDone")
class VisDone:
    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn(name="VisFail")
class VisFail:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("failed on purpose", non_retryable=True)


@workflow.defn(name="VisWait")
class VisWait:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "unreachable"


@workflow.defn(name="VisUpsert")
class VisUpsert:
    """Applies each signalled batch of search attribute updates; ends on "stop"."""

    def __init__(self) -> None:
        self._pending: list[str] = []

    @workflow.signal
    def step(self, name: str) -> None:
        self._pending.append(name)

    @workflow.run
    async def run(self) -> str:
        while True:
            await workflow.wait_condition(lambda: bool(self._pending))
            step = self._pending.pop(0)
            if step == "set":
                workflow.upsert_search_attributes([
                    SA_KEYWORD.value_set("upserted"),
                    SA_INT.value_set(99),
                    SA_KEYWORD_LIST.value_set(["p", "q"]),
                ])
            elif step == "unset":
                workflow.upsert_search_attributes([SA_KEYWORD.value_unset(), SA_INT.value_unset()])
            elif step == "wrong-type":
                # VisKeyword is a Keyword: an Int value is a bad search attribute.
                workflow.upsert_search_attributes([SearchAttributeKey.for_int("VisKeyword").value_set(5)])
            elif step == "unknown":
                workflow.upsert_search_attributes(
                    [SearchAttributeKey.for_keyword("VisNoSuchAttribute").value_set("x")]
                )
            elif step == "stop":
                return "stopped"


WORKFLOWS = [VisDone, VisFail, VisWait, VisUpsert]

# -- the data set ----------------------------------------------------------------

D1, D2, FAILED, RUNNING, TERMINATED, CANCELED = "d1", "d2", "failed", "running", "terminated", "canceled"
ALL = {D1, D2, FAILED, RUNNING, TERMINATED, CANCELED}
CLOSED = ALL - {RUNNING}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# name -> (workflow type, search attributes, memo)
DATA = {
    D1: (VisDone, [
        SA_KEYWORD.value_set("alpha"), SA_TEXT.value_set("quick brown fox"), SA_INT.value_set(1),
        SA_DOUBLE.value_set(0.5), SA_BOOL.value_set(True), SA_DATETIME.value_set(utc(2024, 1, 1)),
        SA_KEYWORD_LIST.value_set(["x", "y"]),
    ], {"idx": 1, "tags": ["first"]}),
    D2: (VisDone, [
        SA_KEYWORD.value_set("beta"), SA_TEXT.value_set("lazy dog"), SA_INT.value_set(2),
        SA_DOUBLE.value_set(1.5), SA_BOOL.value_set(False), SA_DATETIME.value_set(utc(2024, 2, 1)),
        SA_KEYWORD_LIST.value_set(["y", "z"]),
    ], {"idx": 2}),
    FAILED: (VisFail, [
        SA_KEYWORD.value_set("alpha-2"), SA_TEXT.value_set("brown bear"), SA_INT.value_set(3),
        SA_DOUBLE.value_set(2.5), SA_BOOL.value_set(True), SA_DATETIME.value_set(utc(2024, 3, 1)),
        SA_KEYWORD_LIST.value_set(["z"]),
    ], None),
    RUNNING: (VisWait, [
        SA_KEYWORD.value_set("gamma"), SA_TEXT.value_set("fox"), SA_INT.value_set(10),
        SA_DOUBLE.value_set(-1.0), SA_BOOL.value_set(False), SA_DATETIME.value_set(utc(2025, 1, 1)),
    ], None),
    TERMINATED: (VisWait, [], None),
    CANCELED: (VisWait, [SA_KEYWORD.value_set("delta")], None),
}


@dataclasses.dataclass
class DataSet:
    task_queue: str
    prefix: str
    ids: dict[str, str]        # name -> workflow id
    run_ids: dict[str, str]    # name -> run id
    t_begin: datetime          # before the first start
    t_mid: datetime            # after FAILED closed, before RUNNING started
    t_end: datetime            # after the last close

    def scoped(self, query: str) -> str:
        return f"TaskQueue = {quote(self.task_queue)} AND ({query})"

    def names(self, ids: list[str]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id.get(i, i) for i in ids]


async def _first_task_done(handle) -> None:
    await eventually(
        lambda: history_events(handle),
        lambda events: any(e.HasField("workflow_task_completed_event_attributes") for e in events),
        what="first workflow task completed",
    )


async def _build_data_set(address: str, namespace: str) -> DataSet:
    client = await Client.connect(address, namespace=namespace)
    prefix = f"vis-{uuid.uuid4().hex[:12]}"
    tq = f"{prefix}-tq"
    ids = {name: f"{prefix}-{name}" for name in DATA}
    run_ids: dict[str, str] = {}
    now = lambda: datetime.now(timezone.utc)  # noqa: E731

    async def start(name: str):
        wf, attrs, memo = DATA[name]
        handle = await client.start_workflow(
            wf.run, id=ids[name], task_queue=tq, memo=memo,
            search_attributes=TypedSearchAttributes([SearchAttributePair(u.key, u.value) for u in attrs]),
        )
        run_ids[name] = handle.first_execution_run_id
        return handle

    async with new_worker(client, tq, workflows=WORKFLOWS):
        t_begin = now()
        await asyncio.sleep(0.01)
        for name in (D1, D2):
            assert await (await start(name)).result() == "done"
        with pytest.raises(WorkflowFailureError):
            await (await start(FAILED)).result()
        await asyncio.sleep(0.01)
        t_mid = now()
        await asyncio.sleep(0.01)
        await _first_task_done(await start(RUNNING))
        handle = await start(TERMINATED)
        await _first_task_done(handle)
        await handle.terminate("data set")
        handle = await start(CANCELED)
        await _first_task_done(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await asyncio.sleep(0.01)
        t_end = now()

    ds = DataSet(tq, prefix, ids, run_ids, t_begin, t_mid, t_end)
    # Wait until visibility shows every execution in its final state.
    await eventually(
        lambda: client.count_workflows(ds.scoped("ExecutionStatus != 'Running'")),
        lambda c: c.count == len(CLOSED),
        what="the data set's closed executions in visibility",
    )
    await wait_for_ids(client, f"TaskQueue = {quote(tq)}", set(ids.values()))
    return ds


@pytest.fixture(scope="module")
def ds(sa_server) -> DataSet:
    return run_sync(_build_data_set(sa_server.address, sa_server.namespace))


async def matching(client: Client, ds: DataSet, query: str) -> set[str]:
    """Names of the data set's executions matching `query`; list and count must agree."""
    scoped = ds.scoped(query)
    ids = await list_ids(client, scoped)
    assert len(ids) == len(set(ids)), f"duplicates in {ids}"
    count = (await client.count_workflows(scoped)).count
    assert count == len(ids), f"count {count} != {len(ids)} listed for {scoped!r}"
    return set(ds.names(ids))


async def assert_invalid(coro_fn) -> RPCError:
    with pytest.raises(RPCError) as err:
        await coro_fn()
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, f"{err.value.status!r}: {err.value}"
    return err.value


# -- the query language -------------------------------------------------------------

QUERIES = [
    # Keyword: =, !=, IN, NOT IN, STARTS_WITH (unset attributes never match)
    ("VisKeyword = 'alpha'", {D1}),
    ("VisKeyword != 'alpha'", {D2, FAILED, RUNNING, CANCELED}),
    ("VisKeyword IN ('alpha', 'beta', 'nope')", {D1, D2}),
    ("VisKeyword NOT IN ('alpha', 'beta')", {FAILED, RUNNING, CANCELED}),
    ("VisKeyword STARTS_WITH 'alpha'", {D1, FAILED}),
    ("VisKeyword NOT STARTS_WITH 'alpha'", {D2, RUNNING, CANCELED}),
    ("VisKeyword STARTS_WITH '%'", set()),  # LIKE wildcards are literal
    ("VisKeyword STARTS_WITH '_'", set()),
    ("VisKeyword = 'ALPHA'", set()),  # keywords are case-sensitive
    # Int: comparisons, IN, BETWEEN
    ("VisInt = 10", {RUNNING}),
    ("VisInt != 1", {D2, FAILED, RUNNING}),
    ("VisInt > 2", {FAILED, RUNNING}),
    ("VisInt >= 2", {D2, FAILED, RUNNING}),
    ("VisInt < 2", {D1}),
    ("VisInt <= 2", {D1, D2}),
    ("VisInt IN (1, 3)", {D1, FAILED}),
    ("VisInt BETWEEN 2 AND 3", {D2, FAILED}),
    ("VisInt NOT BETWEEN 2 AND 3", {D1, RUNNING}),
    # Double
    ("VisDouble = 1.5", {D2}),
    ("VisDouble > 1.0", {D2, FAILED}),
    ("VisDouble >= 1.5", {D2, FAILED}),
    ("VisDouble < 0", {RUNNING}),
    ("VisDouble <= 0.5", {D1, RUNNING}),
    ("VisDouble BETWEEN 0 AND 2", {D1, D2}),
    # Bool
    ("VisBool = true", {D1, FAILED}),
    ("VisBool = false", {D2, RUNNING}),
    # Datetime: ranges (bounds equal to no stored value, see the module docstring)
    ("VisDatetime > '2024-01-15T00:00:00Z'", {D2, FAILED, RUNNING}),
    ("VisDatetime < '2024-02-15T00:00:00Z'", {D1, D2}),
    ("VisDatetime >= '2024-01-15T00:00:00Z' AND VisDatetime <= '2024-03-15T00:00:00Z'", {D2, FAILED}),
    ("VisDatetime BETWEEN '2024-01-15T00:00:00Z' AND '2024-03-15T00:00:00Z'", {D2, FAILED}),
    ("VisDatetime > '2024-06-01T02:00:00+02:00'", {RUNNING}),  # offsets are honoured
    # KeywordList: = means "contains"
    ("VisKeywordList = 'y'", {D1, D2}),
    ("VisKeywordList = 'q'", set()),
    ("VisKeywordList IN ('x', 'z')", {D1, D2, FAILED}),
    ("VisKeywordList = 'y' AND VisKeywordList = 'z'", {D2}),
    # Text: full-text match on words
    ("VisText = 'brown'", {D1, FAILED}),
    ("VisText = 'fox'", {D1, RUNNING}),
    ("VisText = 'dog'", {D2}),
    # IS NULL / IS NOT NULL
    ("VisKeyword IS NULL", {TERMINATED}),
    ("VisKeyword IS NOT NULL", ALL - {TERMINATED}),
    ("VisInt IS NULL", {TERMINATED, CANCELED}),
    ("VisKeywordList IS NULL", {RUNNING, TERMINATED, CANCELED}),
    ("VisDatetime IS NOT NULL", {D1, D2, FAILED, RUNNING}),
    ("CloseTime IS NULL", {RUNNING}),
    ("CloseTime IS NOT NULL", CLOSED),
    # AND binds tighter than OR; parentheses; NOT
    ("VisInt = 1 OR VisInt = 2 AND VisBool = true", {D1}),
    ("(VisInt = 1 OR VisInt = 2) AND VisBool = false", {D2}),
    ("VisInt = 1 OR (VisInt = 2 AND VisBool = false)", {D1, D2}),
    ("NOT (VisInt > 1 AND VisInt < 10)", {D1, RUNNING}),
    ("VisBool = true AND NOT VisKeyword = 'alpha'", {FAILED}),
    ("NOT (VisKeyword = 'alpha' OR VisKeyword = 'beta')", {FAILED, RUNNING, CANCELED}),
    ("((VisInt >= 1) AND ((VisInt <= 2)))", {D1, D2}),
    # System attributes
    ("ExecutionStatus = 'Completed'", {D1, D2}),
    ("ExecutionStatus = 'Failed'", {FAILED}),
    ("ExecutionStatus = 'Running'", {RUNNING}),
    ("ExecutionStatus = 'Terminated'", {TERMINATED}),
    ("ExecutionStatus = 'Canceled'", {CANCELED}),
    ("ExecutionStatus != 'Running'", CLOSED),
    ("ExecutionStatus IN ('Failed', 'Canceled')", {FAILED, CANCELED}),
    ("WorkflowType = 'VisWait'", {RUNNING, TERMINATED, CANCELED}),
    ("WorkflowType != 'VisWait'", {D1, D2, FAILED}),
    ("WorkflowType IN ('VisDone', 'VisFail')", {D1, D2, FAILED}),
    ("WorkflowType STARTS_WITH 'VisD'", {D1, D2}),
    ("HistoryLength = 5 AND ExecutionStatus = 'Completed'", {D1, D2}),
    ("HistoryLength > 5", {CANCELED}),  # started, task x2, cancel requested, canceled: 9 events
    ("ExecutionDuration >= 0", CLOSED),
    ("ExecutionDuration < '1h'", CLOSED),
    ("ExecutionDuration > '1h'", set()),
]


@pytest.mark.parametrize("query,expected", QUERIES, ids=[q for q, _ in QUERIES])
async def test_query(sa_client: Client, ds: DataSet, query: str, expected: set[str]):
    assert await matching(sa_client, ds, query) == expected


async def test_query_by_ids_and_times(sa_client: Client, ds: DataSet):
    c = sa_client
    assert await matching(c, ds, f"WorkflowId = {quote(ds.ids[D1])}") == {D1}
    assert await matching(c, ds, f"WorkflowId != {quote(ds.ids[D1])}") == ALL - {D1}
    assert await matching(c, ds, f"RunId = {quote(ds.run_ids[FAILED])}") == {FAILED}
    assert await matching(c, ds, f"WorkflowId IN ({quote(ds.ids[D2])}, {quote(ds.ids[CANCELED])})") == {D2, CANCELED}
    assert await matching(c, ds, f"WorkflowId STARTS_WITH {quote(ds.prefix + '-d')}") == {D1, D2}
    assert await matching(c, ds, f'WorkflowId = "{ds.ids[D2]}"') == {D2}  # double quotes work too

    begin, mid, end = rfc3339(ds.t_begin), rfc3339(ds.t_mid), rfc3339(ds.t_end)
    assert await matching(c, ds, f"StartTime >= '{begin}' AND StartTime <= '{end}'") == ALL
    assert await matching(c, ds, f"StartTime BETWEEN '{begin}' AND '{end}'") == ALL
    assert await matching(c, ds, f"StartTime < '{begin}'") == set()
    assert await matching(c, ds, f"StartTime > '{mid}'") == {RUNNING, TERMINATED, CANCELED}
    assert await matching(c, ds, f"StartTime < '{mid}'") == {D1, D2, FAILED}
    assert await matching(c, ds, f"CloseTime < '{mid}'") == {D1, D2, FAILED}
    assert await matching(c, ds, f"CloseTime > '{mid}'") == {TERMINATED, CANCELED}
    assert await matching(c, ds, f"ExecutionTime >= '{begin}'") == ALL
    assert await matching(c, ds, f"ExecutionTime > '{end}'") == set()

    other_queue = f"TaskQueue = {quote(ds.task_queue + '-other')}"
    assert await list_ids(c, other_queue) == []
    assert (await c.count_workflows(other_queue)).count == 0


# -- count with GROUP BY ----------------------------------------------------------------


async def test_count_group_by_execution_status(sa_client: Client, ds: DataSet):
    result = await sa_client.count_workflows(f"TaskQueue = {quote(ds.task_queue)} GROUP BY ExecutionStatus")
    assert result.count == len(ALL)
    groups = {tuple(g.group_values): g.count for g in result.groups}
    assert groups == {
        ("Running",): 1, ("Completed",): 2, ("Failed",): 1, ("Canceled",): 1, ("Terminated",): 1,
    }
    plain = await sa_client.count_workflows(f"TaskQueue = {quote(ds.task_queue)}")
    assert plain.count == len(ALL) and plain.groups == []
    empty = await sa_client.count_workflows(f"TaskQueue = {quote(ds.task_queue + '-x')} GROUP BY ExecutionStatus")
    assert empty.count == 0 and empty.groups == []


@pytest.mark.parametrize("query", [
    "GROUP BY WorkflowType",
    "GROUP BY ExecutionStatus, WorkflowType",
    "GROUP BY NoSuchAttribute",
])
async def test_count_group_by_rejections(sa_client: Client, query: str):
    await assert_invalid(lambda: sa_client.count_workflows(query))


# -- malformed queries and injection ----------------------------------------------------

MALFORMED = [
    "WorkflowId = ",
    "WorkflowId = 'unterminated",
    "(WorkflowId = 'x'",
    "WorkflowId = 'x' AND",
    "WorkflowId == 'x'",
    "SELECT * FROM executions",
    "NoSuchAttribute = 'x'",
    "workflowid = 'x'",  # attribute names are case-sensitive
    "VisInt = 'abc'",  # wrong literal type
    "VisBool = 'true'",
    "WorkflowId = 12",
    "VisDatetime > 'not a date'",
    "StartTime > '2024-01-01'",  # datetimes must be RFC 3339
    "ExecutionStatus = 'Bogus'",
    "ExecutionStatus = 'COMPLETED'",  # statuses are spelled like 'Completed'
    "WorkflowId LIKE 'x%'",
    "VisText STARTS_WITH 'qu'",  # STARTS_WITH is for Keyword attributes
    "VisText IN ('fox')",
    "VisKeywordList STARTS_WITH 'x'",
    "WorkflowId = 'x' LIMIT 5",
]


@pytest.mark.parametrize("query", MALFORMED)
async def test_malformed_query_is_invalid_argument(sa_client: Client, query: str):
    err = await assert_invalid(lambda: list_ids(sa_client, query))
    assert err.message
    await assert_invalid(lambda: sa_client.count_workflows(query))


async def test_query_injection(sa_client: Client, ds: DataSet):
    c = sa_client
    # A quote doubled inside a literal is part of the value, not the query.
    assert await list_ids(c, "WorkflowId = 'a'' OR 1=1 --'") == []
    assert (await c.count_workflows("WorkflowId = 'a'' OR ''1''=''1'")).count == 0
    assert await list_ids(c, ds.scoped("VisKeyword = 'alpha'' OR VisKeyword != ''x'")) == []
    # Bare SQL is not accepted.
    await assert_invalid(lambda: list_ids(c, f"WorkflowId = {quote(ds.ids[D1])} OR 1=1"))
    await assert_invalid(lambda: list_ids(c, f"WorkflowId = {quote(ds.ids[D1])}; DROP TABLE executions_visibility"))
    # The reference's parser drops SQL comments: a trailing one changes nothing.
    assert await list_ids(c, f"WorkflowId = {quote(ds.ids[D1])} -- OR 1=1") == [ds.ids[D1]]

    # An id that contains a quote is found exactly, with the quote doubled.
    wid = f"{ds.prefix}-o'brien"
    handle = await c.start_workflow("VisWait", id=wid, task_queue=unique("vis-quote"))
    await wait_for_ids(c, f"WorkflowId = {quote(wid)}", {wid})
    assert await list_ids(c, f"WorkflowId STARTS_WITH {quote(ds.prefix + '-o' + chr(39))}") == [wid]
    assert await list_ids(c, f"WorkflowId = {quote(ds.prefix + '-o')}") == []
    await handle.terminate()
    # The data set is intact.
    assert (await c.count_workflows(f"TaskQueue = {quote(ds.task_queue)}")).count == len(ALL)


# -- ordering and pagination -------------------------------------------------------------


async def test_default_order_open_first_then_by_close_time_desc(sa_client: Client, ds: DataSet):
    ids = await list_ids(sa_client, f"TaskQueue = {quote(ds.task_queue)}")
    assert ds.names(ids) == [RUNNING, CANCELED, TERMINATED, FAILED, D2, D1]


async def test_order_by(sa_server, sa_client: Client, ds: DataSet):
    queries = {
        "VisInt IS NOT NULL ORDER BY VisInt DESC": [RUNNING, FAILED, D2, D1],
        "VisInt IS NOT NULL ORDER BY VisInt": [D1, D2, FAILED, RUNNING],
        "VisKeyword IS NOT NULL ORDER BY VisKeyword ASC": [D1, FAILED, D2, CANCELED, RUNNING],
        "CloseTime IS NOT NULL ORDER BY CloseTime ASC": [D1, D2, FAILED, TERMINATED, CANCELED],
        "ExecutionStatus != 'Running' ORDER BY StartTime DESC": [CANCELED, TERMINATED, FAILED, D2, D1],
    }
    for query, expected in queries.items():
        where, order = query.split(" ORDER BY ")
        full = f"{ds.scoped(where)} ORDER BY {order}"
        if sa_server.is_reference:
            # The reference's SQLite visibility store rejects ORDER BY ("invalid
            # query: operation is not supported: 'ORDER BY' clause"). Chronicle
            # intends to support it: the other branch is what it must do.
            err = await assert_invalid(lambda: list_ids(sa_client, full))
            assert "ORDER BY" in err.message
        else:
            assert ds.names(await list_ids(sa_client, full)) == expected, query


async def test_pagination_raw_pages(sa_client: Client, ds: DataSet):
    """ListWorkflowExecutions with page_size 2: no page exceeds it, the pages
    cover every match exactly once, and the last page has no next token."""
    svc = sa_client.workflow_service
    query = f"TaskQueue = {quote(ds.task_queue)}"
    seen: list[str] = []
    token = b""
    pages = 0
    while True:
        resp = await svc.list_workflow_executions(ListWorkflowExecutionsRequest(
            namespace=sa_client.namespace, page_size=2, query=query, next_page_token=token,
        ))
        pages += 1
        assert len(resp.executions) <= 2
        seen += [e.execution.workflow_id for e in resp.executions]
        token = resp.next_page_token
        if not token:
            break
        assert pages < 10, "pagination does not terminate"
    assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
    assert set(seen) == set(ds.ids.values())
    assert pages >= 3
    # Page by page the default order is the same as in one page.
    assert seen == await list_ids(sa_client, query)


async def test_pagination_sdk_iterator(sa_client: Client, ds: DataSet):
    query = f"TaskQueue = {quote(ds.task_queue)}"
    for page_size in (1, 4, 100):
        rows = await list_executions(sa_client, query, page_size=page_size)
        ids = [r.id for r in rows]
        assert len(ids) == len(set(ids)) == len(ALL), (page_size, ids)
        assert set(ids) == set(ds.ids.values())


# -- what list and describe return ---------------------------------------------------------


def _check_d1_attributes(typed: TypedSearchAttributes) -> None:
    assert typed[SA_KEYWORD] == "alpha"
    assert typed[SA_TEXT] == "quick brown fox"
    assert typed[SA_INT] == 1
    assert typed[SA_DOUBLE] == 0.5
    assert typed[SA_BOOL] is True
    assert typed[SA_DATETIME] == utc(2024, 1, 1)
    assert list(typed[SA_KEYWORD_LIST]) == ["x", "y"]


async def test_list_and_describe_return_memo_and_search_attributes(sa_client: Client, ds: DataSet):
    (row,) = await list_executions(sa_client, f"WorkflowId = {quote(ds.ids[D1])}")
    assert row.id == ds.ids[D1]
    assert row.run_id == ds.run_ids[D1]
    assert row.workflow_type == "VisDone"
    assert row.task_queue == ds.task_queue
    assert row.status == WorkflowExecutionStatus.COMPLETED
    assert ds.t_begin <= row.start_time <= row.close_time <= ds.t_end
    assert row.execution_time == row.start_time
    assert row.history_length == 5
    _check_d1_attributes(row.typed_search_attributes)
    assert await row.memo() == {"idx": 1, "tags": ["first"]}

    desc = await sa_client.get_workflow_handle(ds.ids[D1]).describe()
    assert desc.run_id == ds.run_ids[D1]
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    _check_d1_attributes(desc.typed_search_attributes)
    assert await desc.memo() == {"idx": 1, "tags": ["first"]}

    # A run without custom attributes or memo.
    (row,) = await list_executions(sa_client, f"WorkflowId = {quote(ds.ids[TERMINATED])}")
    assert row.status == WorkflowExecutionStatus.TERMINATED
    custom = {p.key.name for p in row.typed_search_attributes} & set(CUSTOM_SEARCH_ATTRIBUTES)
    assert custom == set()
    assert await row.memo() == {}
    (row,) = await list_executions(sa_client, f"WorkflowId = {quote(ds.ids[RUNNING])}")
    assert row.status == WorkflowExecutionStatus.RUNNING
    assert row.close_time is None


async def test_server_adds_type_metadata_to_search_attributes(sa_client: Client):
    """A start request whose search attribute payloads carry no "type" metadata:
    describe and list return them typed (the SDK decodes typed values from it)."""
    wid = unique("vis-untyped")
    json_plain = {"encoding": b"json/plain"}
    await sa_client.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace=sa_client.namespace, workflow_id=wid, workflow_type=WorkflowType(name="VisWait"),
        task_queue=TaskQueue(name=unique("vis-untyped-tq")), request_id=str(uuid.uuid4()),
        search_attributes=SearchAttributes(indexed_fields={
            "VisKeyword": Payload(metadata=json_plain, data=b'"plain"'),
            "VisInt": Payload(metadata=json_plain, data=b"17"),
            "VisKeywordList": Payload(metadata=json_plain, data=b'["m","n"]'),
        }),
    ))
    handle = sa_client.get_workflow_handle(wid)
    desc = await handle.describe()
    fields = desc.raw_description.workflow_execution_info.search_attributes.indexed_fields
    assert fields["VisKeyword"].metadata["type"] == b"Keyword"
    assert fields["VisInt"].metadata["type"] == b"Int"
    assert fields["VisKeywordList"].metadata["type"] == b"KeywordList"
    typed = desc.typed_search_attributes
    assert typed[SA_KEYWORD] == "plain" and typed[SA_INT] == 17
    assert list(typed[SA_KEYWORD_LIST]) == ["m", "n"]
    (row,) = await eventually(
        lambda: list_executions(sa_client, f"WorkflowId = {quote(wid)} AND VisInt = 17"),
        lambda rows: len(rows) == 1,
        what="the untyped start in visibility",
    )
    assert row.typed_search_attributes[SA_KEYWORD] == "plain"
    await handle.terminate()


# -- upserts ------------------------------------------------------------------------------


async def test_upsert_is_visible_to_list_and_describe(sa_client: Client):
    tq, wid = unique("vis-upsert"), unique("vis-upsert-wf")
    async with new_worker(sa_client, tq, workflows=WORKFLOWS):
        handle = await sa_client.start_workflow(
            VisUpsert.run, id=wid, task_queue=tq,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_KEYWORD, "initial")]),
        )
        await wait_for_ids(sa_client, f"WorkflowId = {quote(wid)} AND VisKeyword = 'initial'", {wid})

        await handle.signal(VisUpsert.step, "set")
        await wait_for_ids(
            sa_client, f"WorkflowId = {quote(wid)} AND VisKeyword = 'upserted' AND VisInt = 99 AND VisKeywordList = 'q'", {wid},
        )
        assert await list_ids(sa_client, f"WorkflowId = {quote(wid)} AND VisKeyword = 'initial'") == []
        typed = (await handle.describe()).typed_search_attributes
        assert typed[SA_KEYWORD] == "upserted" and typed[SA_INT] == 99
        assert list(typed[SA_KEYWORD_LIST]) == ["p", "q"]
        events = await history_events(handle)
        upserts = [e for e in events if e.HasField("upsert_workflow_search_attributes_event_attributes")]
        assert len(upserts) == 1

        await handle.signal(VisUpsert.step, "unset")
        await wait_for_ids(sa_client, f"WorkflowId = {quote(wid)} AND VisKeyword IS NULL AND VisInt IS NULL", {wid})
        typed = (await handle.describe()).typed_search_attributes
        assert typed.get(SA_KEYWORD) is None and typed.get(SA_INT) is None
        assert list(typed[SA_KEYWORD_LIST]) == ["p", "q"]  # untouched

        await handle.signal(VisUpsert.step, "stop")
        assert await handle.result() == "stopped"
    # The closed run keeps its final attributes.
    await wait_for_ids(
        sa_client, f"WorkflowId = {quote(wid)} AND ExecutionStatus = 'Completed' AND VisKeywordList = 'p'", {wid},
    )


@pytest.mark.parametrize("step,message", [
    ("wrong-type", "invalid value for search attribute VisKeyword of type Keyword"),
    ("unknown", "VisNoSuchAttribute"),
])
async def test_bad_upsert_fails_the_workflow_task(sa_client: Client, step: str, message: str):
    """The reference rejects RespondWorkflowTaskCompleted (InvalidArgument) and
    records WorkflowTaskFailed with cause BAD_SEARCH_ATTRIBUTES; the workflow
    stays running and its attributes unchanged (the SDK retries the task)."""
    tq, wid = unique("vis-badupsert"), unique(f"vis-badupsert-{step}")
    async with new_worker(sa_client, tq, workflows=WORKFLOWS):
        handle = await sa_client.start_workflow(
            VisUpsert.run, id=wid, task_queue=tq,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_KEYWORD, "before")]),
            task_timeout=timedelta(seconds=2),
        )
        await handle.signal(VisUpsert.step, step)
        events = await eventually(
            lambda: history_events(handle),
            lambda evs: any(e.HasField("workflow_task_failed_event_attributes") for e in evs),
            what="a failed workflow task",
        )
        failed = next(e for e in events if e.HasField("workflow_task_failed_event_attributes"))
        attrs = failed.workflow_task_failed_event_attributes
        assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES
        assert message in attrs.failure.message
        assert not any(e.HasField("upsert_workflow_search_attributes_event_attributes") for e in events)
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        assert desc.typed_search_attributes[SA_KEYWORD] == "before"
        await handle.terminate()


async def test_start_with_bad_search_attributes_is_rejected(sa_client: Client):
    cases = [
        (SearchAttributeKey.for_int("VisKeyword"), 5, "VisKeyword"),  # wrong type
        (SearchAttributeKey.for_keyword("VisInt"), "abc", "VisInt"),
        (SearchAttributeKey.for_keyword("VisNoSuchAttribute"), "x", "VisNoSuchAttribute"),  # unknown
    ]
    for key, value, name in cases:
        wid = unique("vis-badstart")
        with pytest.raises(RPCError) as err:
            await sa_client.start_workflow(
                "VisWait", id=wid, task_queue=unique("vis-badstart-tq"),
                search_attributes=TypedSearchAttributes([SearchAttributePair(key, value)]),
            )
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert name in err.value.message
    # Nothing was started.
    assert await list_ids(sa_client, "WorkflowId STARTS_WITH 'vis-badstart'") == []


# -- search attribute registry ----------------------------------------------------------------


async def test_list_search_attributes(sa_client: Client):
    resp = await sa_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=sa_client.namespace)
    )
    expected = {
        name: IndexedValueType.Value(
            "INDEXED_VALUE_TYPE_" + {"KeywordList": "KEYWORD_LIST"}.get(kind, kind.upper())
        )
        for name, kind in CUSTOM_SEARCH_ATTRIBUTES.items()
    }
    custom = dict(resp.custom_attributes)
    for name, kind in expected.items():
        assert custom.get(name) == kind, name
    system = dict(resp.system_attributes)
    assert system["WorkflowId"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert system["StartTime"] == IndexedValueType.INDEXED_VALUE_TYPE_DATETIME
    assert system["HistoryLength"] == IndexedValueType.INDEXED_VALUE_TYPE_INT


async def test_attribute_registered_through_operator_service(sa_client: Client):
    ops = sa_client.operator_service
    ns = sa_client.namespace
    name = "VisOp" + uuid.uuid4().hex[:8]
    await ops.add_search_attributes(AddSearchAttributesRequest(
        namespace=ns, search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
    ))
    resp = await ops.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    assert resp.custom_attributes[name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

    key = SearchAttributeKey.for_keyword(name)
    wid = unique("vis-op")
    handle = await sa_client.start_workflow(
        "VisWait", id=wid, task_queue=unique("vis-op-tq"),
        search_attributes=TypedSearchAttributes([SearchAttributePair(key, "registered")]),
    )
    await wait_for_ids(sa_client, f"{name} = 'registered'", {wid})
    assert (await handle.describe()).typed_search_attributes[key] == "registered"
    await handle.terminate()

    # System attribute names cannot be registered.
    with pytest.raises(RPCError) as err:
        await ops.add_search_attributes(AddSearchAttributesRequest(
            namespace=ns, search_attributes={"WorkflowId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
        ))
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT

    await ops.remove_search_attributes(RemoveSearchAttributesRequest(namespace=ns, search_attributes=[name]))
    resp = await ops.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    assert name not in resp.custom_attributes
    await assert_invalid(lambda: list_ids(sa_client, f"{name} = 'registered'"))
