"""Schedules through the Python SDK: create/describe/list/update/patch/delete, the scheduler
that starts workflows (intervals, triggers, backfills, overlap policies, pause on failure,
limited actions, last completion result), matching times, and catch-up after a restart.

Every test uses its own schedule ids and task queues. Times come from second-granularity
intervals, `trigger`, `backfill` and ListScheduleMatchingTimes, so nothing waits for minutes;
conditions are polled with deadlines (`eventually`).

Facts of the reference these tests pin down (Temporal 1.32 `server start-dev`):
  * a started workflow's id is `<action workflow id>-<nominal time, RFC 3339 UTC, whole
    seconds>`, e.g. `wf-2026-01-01T10:00:00Z`; for a trigger the nominal time is the trigger
    time, truncated to the second in the id;
  * started workflows carry the `TemporalScheduledById` (schedule id) and
    `TemporalScheduledStartTime` (nominal time) search attributes;
  * cron strings come back as structured calendars (after the request's own structured
    calendars), intervals keep `interval`/`phase`; an unset catch-up window reads back as one
    year, anything below 10 s as 10 s;
  * backfill ranges include both ends; ListScheduleMatchingTimes excludes the start and
    includes the end.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import workflow
from temporalio.api.workflowservice.v1 import (
    CountSchedulesRequest,
    CreateScheduleRequest,
    ListScheduleMatchingTimesRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from helpers import (
    SA_INT,
    SA_KEYWORD,
    eventually,
    history_events,
    list_executions,
    new_worker,
    quote,
    unique,
)

UTC = timezone.utc
SCHEDULED_BY_ID = SearchAttributeKey.for_keyword("TemporalScheduledById")
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
SCHEDULER_WORKFLOW_PREFIX = "temporal-sys-scheduler:"
DESCRIBE_TIMEOUT_S = 20.0
DOWN_S = 13  # how long the restart test keeps the server down


# -- workflows the schedules start -------------------------------------------------


@workflow.defn(name="SchedGreet")
class SchedGreet:
    @workflow.run
    async def run(self, name: str = "nobody") -> str:
        return f"hello {name}"


@workflow.defn(name="SchedBlocker")
class SchedBlocker:
    """Runs until it gets the `release` signal (a cancel request cancels it)."""

    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._released)
        return "released"


@workflow.defn(name="SchedFails")
class SchedFails:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("scheduled run fails", non_retryable=True)


@workflow.defn(name="SchedChain")
class SchedChain:
    """Fails when it has neither a last completion result nor a last failure (the first run);
    otherwise reports what the schedule handed it."""

    @workflow.run
    async def run(self) -> str:
        previous = workflow.get_last_completion_result(str) if workflow.has_last_completion_result() else None
        failure = workflow.get_last_failure()
        if previous is None and failure is None:
            raise ApplicationError("first run fails", non_retryable=True)
        return f"previous={previous} failure={failure.message if failure else None}"


ALL_WORKFLOWS = [SchedGreet, SchedBlocker, SchedFails, SchedChain]


def worker(client: Client, task_queue: str):
    return new_worker(client, task_queue, workflows=ALL_WORKFLOWS)


# -- helpers -------------------------------------------------------------------------


def sched_id(prefix: str) -> str:
    return unique(f"sched-{prefix}")


def nominal_id(base: str, when: datetime) -> str:
    """The id the scheduler gives a workflow it starts for nominal time `when`."""
    return f"{base}-{when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def nominal_of(base: str, wf_id: str) -> datetime:
    """The nominal time in the id of a workflow the scheduler started for action id `base`."""
    assert wf_id.startswith(f"{base}-"), wf_id
    return datetime.strptime(wf_id[len(base) + 1:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def start_action(workflow_type: str, wf_id: str, task_queue: str, *args, **kw) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(workflow_type, args=list(args), id=wf_id, task_queue=task_queue, **kw)


def manual_only() -> ScheduleSpec:
    """A spec with no times at all: the schedule acts only when triggered or backfilled."""
    return ScheduleSpec()


async def describe_until(handle: ScheduleHandle, ok, what: str, timeout: float = DESCRIBE_TIMEOUT_S):
    return await eventually(handle.describe, ok, what=f"schedule {handle.id}: {what}", timeout=timeout, interval=0.1)


def processed(desc: ScheduleDescription) -> int:
    """Triggers/nominal times the scheduler has dealt with: started, skipped or buffered."""
    info = desc.info
    return info.num_actions + info.num_actions_skipped_overlap + desc.raw_description.info.buffer_size


# When each schedule's last trigger was seen processed (time.time()).
_last_trigger: dict[str, float] = {}


async def own_second(schedule_id: str) -> None:
    """If this schedule was triggered in the current wall-clock second, sleep to just past
    the next one, so the next trigger gets a nominal time (and so a workflow id) of its own."""
    last, now = _last_trigger.get(schedule_id), time.time()
    if last is not None and int(now) <= int(last):
        await asyncio.sleep(int(last) + 1 - now + 0.02)


async def trigger_and_wait(handle: ScheduleHandle, **kw) -> ScheduleDescription:
    """Trigger once in a second of its own and wait until the scheduler has processed it."""
    before = processed(await handle.describe())
    await own_second(handle.id)
    await handle.trigger(**kw)
    desc = await describe_until(handle, lambda d: processed(d) > before, "the trigger to be processed")
    _last_trigger[handle.id] = time.time()
    return desc


def running_ids(desc: ScheduleDescription) -> list[str]:
    return [r.workflow_id for r in desc.info.running_actions]


def recent_ids(desc: ScheduleDescription) -> list[str]:
    return [a.action.workflow_id for a in desc.info.recent_actions]


async def status_of(client: Client, wf_id: str) -> WorkflowExecutionStatus:
    return (await client.get_workflow_handle(wf_id).describe()).status


async def wait_status(client: Client, wf_id: str, status: WorkflowExecutionStatus) -> None:
    await eventually(
        lambda: status_of(client, wf_id), lambda s: s == status, what=f"{wf_id} to be {status.name}", interval=0.1
    )


async def scheduled_workflow_ids(client: Client, schedule_id: str, expected: int) -> list[str]:
    """Workflow ids the schedule started, by visibility (polled until there are `expected`)."""
    query = f"TemporalScheduledById = {quote(schedule_id)}"
    rows = await eventually(
        lambda: list_executions(client, query),
        lambda rows: len(rows) >= expected,
        what=f"{expected} workflows started by {schedule_id}",
    )
    return sorted(wf.id for wf in rows)


async def matching_times(client: Client, schedule_id: str, start: datetime, end: datetime) -> list[datetime]:
    resp = await client.workflow_service.list_schedule_matching_times(
        ListScheduleMatchingTimesRequest(
            namespace=client.namespace, schedule_id=schedule_id, start_time=ts(start), end_time=ts(end)
        )
    )
    return [t.ToDatetime().replace(tzinfo=UTC) for t in resp.start_time]


async def count_schedules(client: Client, query: str = "") -> int:
    resp = await client.workflow_service.count_schedules(
        CountSchedulesRequest(namespace=client.namespace, query=query)
    )
    return resp.count


async def list_schedule_ids(client: Client, query: str | None = None) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules(query)])


async def paused_schedule(client: Client, spec: ScheduleSpec, prefix: str = "times", **kw) -> str:
    """A paused schedule of `spec` whose action no worker serves (for matching times)."""
    schedule_id = sched_id(prefix)
    await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action("SchedGreet", f"wf-{schedule_id}", "no-worker"),
            spec=spec,
            state=ScheduleState(paused=True),
        ),
        **kw,
    )
    return schedule_id


# -- create / describe ---------------------------------------------------------------


async def test_create_describe_round_trips_action_spec_policies_state_memo_and_search_attributes(sa_client):
    """Describe returns what create stored: the start-workflow action (type, id, queue, args,
    memo, search attributes), intervals with phase, structured calendars, skip calendars, time
    zone, jitter, policies, state, and the schedule's own memo and search attributes; the
    triggered run carries the action's args, memo and search attributes."""
    client = sa_client
    schedule_id, tq = sched_id("roundtrip"), unique("tq-sched-roundtrip")
    wf_id = f"wf-{schedule_id}"
    action_sa = TypedSearchAttributes([SearchAttributePair(SA_KEYWORD, "action-kw")])
    schedule_sa = TypedSearchAttributes([SearchAttributePair(SA_INT, 7)])
    spec = ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=5))],
        calendars=[
            ScheduleCalendarSpec(
                hour=[ScheduleRange(9)], minute=[ScheduleRange(30)], day_of_week=[ScheduleRange(1, 5)],
                comment="weekday mornings",
            )
        ],
        skip=[ScheduleCalendarSpec(month=[ScheduleRange(12)], day_of_month=[ScheduleRange(25)])],
        time_zone_name="America/New_York",
        jitter=timedelta(seconds=3),
    )
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action(
                "SchedGreet", wf_id, tq, "round trip",
                memo={"action-memo": {"nested": [1, 2]}}, typed_search_attributes=action_sa,
                execution_timeout=timedelta(minutes=10),
            ),
            spec=spec,
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.BUFFER_ALL, catchup_window=timedelta(minutes=10), pause_on_failure=True
            ),
            state=ScheduleState(paused=True, note="created paused", limited_actions=True, remaining_actions=3),
        ),
        memo={"schedule-memo": "x"},
        search_attributes=schedule_sa,
    )
    assert handle.id == schedule_id

    desc = await handle.describe()
    assert desc.id == schedule_id
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.id, action.task_queue) == ("SchedGreet", wf_id, tq)
    assert await client.data_converter.decode(action.args) == ["round trip"]
    assert action.execution_timeout == timedelta(minutes=10)
    assert set(action.memo) == {"action-memo"}
    assert (await client.data_converter.decode([action.memo["action-memo"]])) == [{"nested": [1, 2]}]
    assert action.typed_search_attributes.get(SA_KEYWORD) == "action-kw"

    got = desc.schedule.spec
    assert got.intervals == [ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=5))]
    assert got.calendars == [
        ScheduleCalendarSpec(
            second=(ScheduleRange(0),), minute=(ScheduleRange(30),), hour=(ScheduleRange(9),),
            day_of_month=(ScheduleRange(1, 31),), month=(ScheduleRange(1, 12),), year=(),
            day_of_week=(ScheduleRange(1, 5),), comment="weekday mornings",
        )
    ]
    assert got.skip == [
        ScheduleCalendarSpec(
            second=(ScheduleRange(0),), minute=(ScheduleRange(0),), hour=(ScheduleRange(0),),
            day_of_month=(ScheduleRange(25),), month=(ScheduleRange(12),), year=(),
            day_of_week=(ScheduleRange(0, 6),),
        )
    ]
    assert list(got.cron_expressions) == []
    assert got.time_zone_name == "America/New_York"
    assert got.jitter == timedelta(seconds=3)
    assert (got.start_at, got.end_at) == (None, None)

    policy = desc.schedule.policy
    assert policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL
    assert policy.catchup_window == timedelta(minutes=10)
    assert policy.pause_on_failure is True
    state = desc.schedule.state
    assert (state.paused, state.note, state.limited_actions, state.remaining_actions) == (
        True, "created paused", True, 3
    )

    assert await desc.memo() == {"schedule-memo": "x"}
    assert desc.typed_search_attributes.get(SA_INT) == 7
    info = desc.info
    assert (info.num_actions, info.num_actions_missed_catchup_window, info.num_actions_skipped_overlap) == (0, 0, 0)
    assert list(info.running_actions) == [] and list(info.recent_actions) == []
    assert abs((info.created_at - datetime.now(UTC)).total_seconds()) < 60
    assert info.last_updated_at is None
    # A paused schedule still lists its next times, no more than its remaining actions.
    assert len(info.next_action_times) == 3
    assert all(t > datetime.now(UTC) for t in info.next_action_times)

    # Triggering a paused schedule still starts its action, as configured.
    async with worker(client, tq):
        desc = await trigger_and_wait(handle)
        (started_id,) = recent_ids(desc)
        assert started_id.startswith(f"{wf_id}-")
        run = client.get_workflow_handle(started_id)
        assert await run.result() == "hello round trip"
    wf_desc = await run.describe()
    assert wf_desc.workflow_type == "SchedGreet" and wf_desc.task_queue == tq
    assert await wf_desc.memo() == {"action-memo": {"nested": [1, 2]}}
    assert wf_desc.typed_search_attributes.get(SA_KEYWORD) == "action-kw"
    assert wf_desc.typed_search_attributes.get(SCHEDULED_BY_ID) == schedule_id
    # The schedule's own memo and search attributes stay on the schedule.
    assert wf_desc.typed_search_attributes.get(SA_INT) is None
    started = (await history_events(run))[0].workflow_execution_started_event_attributes
    assert started.workflow_execution_timeout.ToTimedelta() == timedelta(minutes=10)
    await handle.delete()


async def test_cron_strings_are_canonicalised_into_structured_calendars(client):
    """The server turns cron strings (fields, names, ranges, lists, steps, @-macros, 6-field
    `min hour dom month dow year` and 7-field `sec min hour dom month dow year` forms, Sunday
    as 7) into structured calendars appended after the given ones;
    `@every` becomes an interval and CRON_TZ becomes the spec's time zone."""
    schedule_id = await paused_schedule(
        client,
        ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(3)])],
            cron_expressions=[
                "0 12 * * MON-FRI",
                "*/15 8-10 1,15 JAN,JUL *",
                "@daily",
                "@hourly",
                "30 0 6 * * *",
                "0 0 0 1 1 * 2030",
                "0 0 * * 7",
            ],
        ),
        prefix="cron",
    )
    spec = (await client.get_schedule_handle(schedule_id).describe()).schedule.spec
    assert list(spec.cron_expressions) == []
    r = ScheduleRange

    def cal(second=(r(0),), minute=(r(0),), hour=(r(0),), dom=(r(1, 31),), month=(r(1, 12),), dow=(r(0, 6),), year=()):
        return ScheduleCalendarSpec(
            second=tuple(second), minute=tuple(minute), hour=tuple(hour), day_of_month=tuple(dom),
            month=tuple(month), year=tuple(year), day_of_week=tuple(dow),
        )

    assert spec.calendars == [
        cal(hour=[r(3)]),
        cal(hour=[r(12)], dow=[r(1, 5)]),
        cal(minute=[r(0, 59, 15)], hour=[r(8, 10)], dom=[r(1), r(15)], month=[r(1), r(7)]),
        cal(),
        cal(hour=[r(0, 23)]),
        cal(minute=[r(30)], dom=[r(6)]),  # six fields: minute hour day month weekday year
        cal(dom=[r(1)], month=[r(1)], year=[r(2030)]),
        cal(dow=[r(0)]),
    ]
    assert spec.intervals == [] and spec.time_zone_name is None

    every = await paused_schedule(client, ScheduleSpec(cron_expressions=["@every 90m"]), prefix="cron-every")
    spec = (await client.get_schedule_handle(every).describe()).schedule.spec
    assert spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=90))]
    assert spec.calendars == []

    tz = await paused_schedule(
        client, ScheduleSpec(cron_expressions=["CRON_TZ=Asia/Tokyo 0 9 * * *"]), prefix="cron-tz"
    )
    spec = (await client.get_schedule_handle(tz).describe()).schedule.spec
    assert spec.time_zone_name == "Asia/Tokyo"
    assert spec.calendars == [cal(hour=[r(9)])]
    # 09:00 in Tokyo is midnight UTC.
    assert await matching_times(client, tz, at(2027, 1, 1), at(2027, 1, 3)) == [at(2027, 1, 2), at(2027, 1, 3)]


async def test_defaults_filled_in_by_the_server(client):
    """Unset policies read back as SKIP with a one-year catch-up window; a catch-up window
    below the 10 s minimum reads back as 10 s."""
    schedule_id = await paused_schedule(client, manual_only(), prefix="defaults")
    policy = (await client.get_schedule_handle(schedule_id).describe()).schedule.policy
    assert policy.overlap == ScheduleOverlapPolicy.SKIP
    assert policy.catchup_window == timedelta(days=365)
    assert policy.pause_on_failure is False

    short = sched_id("short-catchup")
    await client.create_schedule(
        short,
        Schedule(
            action=start_action("SchedGreet", f"wf-{short}", "no-worker"),
            spec=manual_only(),
            policy=SchedulePolicy(catchup_window=timedelta(seconds=1)),
            state=ScheduleState(paused=True),
        ),
    )
    policy = (await client.get_schedule_handle(short).describe()).schedule.policy
    assert policy.catchup_window == timedelta(seconds=10)


async def test_duplicate_schedule_id_is_already_exists(client):
    """A second create with the same schedule id fails with ALREADY_EXISTS (the SDK's
    ScheduleAlreadyRunningError) and leaves the first schedule as it was."""
    schedule_id = await paused_schedule(client, manual_only(), prefix="dup")
    other = Schedule(
        action=start_action("SchedGreet", "wf-other", "other-queue"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=5))]),
    )
    with pytest.raises(ScheduleAlreadyRunningError):
        await client.create_schedule(schedule_id, other)

    request = CreateScheduleRequest(
        namespace=client.namespace, schedule_id=schedule_id, schedule=await other._to_proto(client),
        request_id=unique("req"),
    )
    with pytest.raises(RPCError) as err:
        await client.workflow_service.create_schedule(request)
    assert err.value.status == RPCStatusCode.ALREADY_EXISTS
    assert err.value.message == f'schedule "{schedule_id}" is already registered'
    assert err.value.grpc_status.details[0].type_url.endswith("WorkflowExecutionAlreadyStartedFailure")

    desc = await client.get_schedule_handle(schedule_id).describe()
    assert desc.schedule.action.id == f"wf-{schedule_id}"
    assert desc.schedule.state.paused


async def test_missing_schedule_is_not_found(client):
    """Describe, trigger, pause, update, delete and matching times of an unknown schedule id
    are NOT_FOUND."""
    handle = client.get_schedule_handle(sched_id("missing"))
    calls = [
        handle.describe(), handle.delete(), handle.trigger(), handle.pause(note="x"), handle.unpause(),
        handle.backfill(ScheduleBackfill(start_at=at(2026, 1, 1), end_at=at(2026, 1, 2))),
        matching_times(client, handle.id, at(2026, 1, 1), at(2026, 1, 2)),
    ]
    for call in calls:
        with pytest.raises(RPCError) as err:
            await call
        assert err.value.status == RPCStatusCode.NOT_FOUND, err.value.message
    with pytest.raises(RPCError) as err:
        await handle.update(lambda _: None)
    assert err.value.status == RPCStatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "spec, message",
    [
        (ScheduleSpec(cron_expressions=["not a cron"]), "Invalid schedule spec: CronString does not have 5-7 fields"),
        (ScheduleSpec(cron_expressions=["* * * *"]), "Invalid schedule spec: CronString does not have 5-7 fields"),
        (ScheduleSpec(cron_expressions=["61 * * * *"]), "Invalid schedule spec: Minute is not in range [0-59]"),
        (
            ScheduleSpec(cron_expressions=["0 12 * * *"], time_zone_name="Mars/Olympus_Mons"),
            "Invalid schedule spec: unknown time zone Mars/Olympus_Mons",
        ),
        (
            ScheduleSpec(cron_expressions=["CRON_TZ=Europe/London 0 12 * * *"], time_zone_name="America/New_York"),
            "Invalid schedule spec: conflicting timezone names",
        ),
        (
            ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=10), offset=timedelta(seconds=10))]),
            "Invalid schedule spec: phase cannot be greater than Interval",
        ),
        (
            ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(0))]),
            "Invalid schedule spec: interval is too small",
        ),
        (
            ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(25)])]),
            "Invalid schedule spec: invalid calendar spec: Hour Start is not in range [0-23], "
            "Hour End is before Start or not in range [0-23]",
        ),
    ],
    ids=["garbage-cron", "four-fields", "minute-61", "bad-time-zone", "two-time-zones", "phase-too-big",
         "zero-interval", "hour-25"],
)
async def test_invalid_spec_is_invalid_argument(client, spec, message):
    """An invalid spec is refused with INVALID_ARGUMENT and the reference's message, and no
    schedule is created."""
    schedule_id = sched_id("invalid")
    with pytest.raises(RPCError) as err:
        await client.create_schedule(
            schedule_id, Schedule(action=start_action("SchedGreet", "wf", "tq"), spec=spec)
        )
    assert (err.value.status, err.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    with pytest.raises(RPCError) as err:
        await client.get_schedule_handle(schedule_id).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


# -- the scheduler running -------------------------------------------------------------


async def test_interval_schedule_starts_workflows_named_by_nominal_time(client):
    """An every-second interval starts a workflow per second; each is named
    `<action id>-<nominal time>`, carries TemporalScheduledById / TemporalScheduledStartTime,
    and describe reports the action count, recent actions (with the started run) and the
    next ten whole-second action times."""
    schedule_id, tq = sched_id("interval"), unique("tq-sched-interval")
    wf_id = f"wf-{schedule_id}"
    async with worker(client, tq):
        handle = await client.create_schedule(
            schedule_id,
            Schedule(
                action=start_action("SchedGreet", wf_id, tq, "interval"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            ),
        )
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 3, "three actions")
        await handle.pause()
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused")

        recent = desc.info.recent_actions
        assert len(recent) == desc.info.num_actions >= 3
        nominal = [a.scheduled_at for a in recent]
        assert all(t.microsecond == 0 for t in nominal), nominal
        # Consecutive whole seconds (the interval is aligned to the epoch).
        assert [(b - a) for a, b in zip(nominal, nominal[1:])] == [timedelta(seconds=1)] * (len(nominal) - 1)
        for action in recent:
            assert action.action.workflow_id == nominal_id(wf_id, action.scheduled_at)
            assert action.action.first_execution_run_id
            assert action.started_at >= action.scheduled_at
            run = client.get_workflow_handle(action.action.workflow_id, run_id=action.action.first_execution_run_id)
            assert await run.result() == "hello interval"
            wf_desc = await run.describe()
            assert wf_desc.typed_search_attributes.get(SCHEDULED_BY_ID) == schedule_id
            assert wf_desc.typed_search_attributes.get(SCHEDULED_START_TIME) == action.scheduled_at
            started = (await history_events(run))[0].workflow_execution_started_event_attributes
            assert started.workflow_id == action.action.workflow_id
            assert started.task_queue.name == tq

    assert set(await scheduled_workflow_ids(client, schedule_id, len(recent))) == {
        nominal_id(wf_id, t) for t in nominal
    }
    # Future times: the next ten whole seconds after the last action.
    future = desc.info.next_action_times
    assert len(future) == 10
    assert future[0] > nominal[-1]
    assert all(t.microsecond == 0 for t in future)
    assert [(b - a) for a, b in zip(future, future[1:])] == [timedelta(seconds=1)] * 9
    await handle.delete()


async def test_trigger_starts_now_and_names_the_run_by_trigger_time(client):
    """trigger() starts the action at once; the nominal time is the trigger time and the
    workflow id carries it truncated to the second; recent actions and running workflows
    list the run until it completes."""
    schedule_id, tq = sched_id("trigger"), unique("tq-sched-trigger")
    wf_id = f"wf-{schedule_id}"
    handle = await client.create_schedule(
        schedule_id, Schedule(action=start_action("SchedBlocker", wf_id, tq), spec=manual_only())
    )
    async with worker(client, tq):
        before = datetime.now(UTC)
        desc = await trigger_and_wait(handle)
        after = datetime.now(UTC)
        (action,) = desc.info.recent_actions
        assert before - timedelta(seconds=1) <= action.scheduled_at <= after
        assert action.action.workflow_id == nominal_id(wf_id, action.scheduled_at)
        assert running_ids(desc) == [action.action.workflow_id]
        assert desc.info.running_actions[0].first_execution_run_id == action.action.first_execution_run_id
        assert desc.info.num_actions == 1
        assert list(desc.info.next_action_times) == []

        run = client.get_workflow_handle(action.action.workflow_id)
        await run.signal(SchedBlocker.release)
        assert await run.result() == "released"
        desc = await describe_until(handle, lambda d: not d.info.running_actions, "no running workflows")
        assert desc.info.num_actions == 1
    await handle.delete()


async def test_pause_with_note_and_unpause(client):
    """pause(note) stops new actions and describe shows paused with the note; unpause(note)
    resumes the schedule and replaces the note."""
    schedule_id, tq = sched_id("pause"), unique("tq-sched-pause")
    async with worker(client, tq):
        handle = await client.create_schedule(
            schedule_id,
            Schedule(
                action=start_action("SchedGreet", f"wf-{schedule_id}", tq),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            ),
        )
        await describe_until(handle, lambda d: d.info.num_actions >= 1, "a first action")
        await handle.pause(note="paused for maintenance")
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused")
        assert desc.schedule.state.note == "paused for maintenance"
        count = desc.info.num_actions
        await asyncio.sleep(1.5)
        desc = await handle.describe()
        assert desc.info.num_actions == count, "a paused schedule took an action"
        assert desc.schedule.state.paused

        await handle.unpause(note="back in business")
        desc = await describe_until(handle, lambda d: not d.schedule.state.paused, "unpaused")
        assert desc.schedule.state.note == "back in business"
        await describe_until(handle, lambda d: d.info.num_actions >= count + 2, "actions after unpausing")
        await handle.pause()
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused again")
        # The SDK's default note.
        assert desc.schedule.state.note == "Paused via Python SDK"
    await handle.delete()


async def test_update_replaces_spec_and_action(client):
    """handle.update() replaces the schedule: new runs use the new interval and action
    (workflow type and args), the schedule's update time is set, counts carry on."""
    schedule_id, tq = sched_id("update"), unique("tq-sched-update")
    wf_id = f"wf-{schedule_id}"
    async with worker(client, tq):
        handle = await client.create_schedule(
            schedule_id,
            Schedule(
                action=start_action("SchedGreet", wf_id, tq, "before"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(note="original"),
            ),
        )
        first = await trigger_and_wait(handle)
        assert first.info.last_updated_at is None

        def change(input: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = input.description.schedule
            assert isinstance(schedule.action, ScheduleActionStartWorkflow)
            schedule.action = start_action("SchedGreet", f"{wf_id}-v2", tq, "after")
            schedule.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))])
            schedule.state.note = "updated"
            return ScheduleUpdate(schedule=schedule)

        await handle.update(change)
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 3, "actions on the new interval")
        await handle.pause()
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused")

        assert desc.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=1))]
        assert desc.schedule.action.args and await client.data_converter.decode(desc.schedule.action.args) == ["after"]
        assert desc.info.last_updated_at is not None and desc.info.last_updated_at >= desc.info.created_at
        old, *new = desc.info.recent_actions
        assert old.action.workflow_id == recent_ids(first)[0]
        assert await client.get_workflow_handle(old.action.workflow_id).result() == "hello before"
        for action in new:
            assert action.action.workflow_id == nominal_id(f"{wf_id}-v2", action.scheduled_at)
            assert await client.get_workflow_handle(action.action.workflow_id).result() == "hello after"

    # An updater returning None changes nothing.
    await handle.update(lambda _: None)
    assert (await handle.describe()).schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=1))]
    await handle.delete()


async def test_delete_removes_schedule_but_not_its_workflows(client):
    """delete() removes the schedule (describe and a second delete are NOT_FOUND, list
    drops it) and leaves the workflows it started."""
    schedule_id, tq = sched_id("delete"), unique("tq-sched-delete")
    handle = await client.create_schedule(
        schedule_id, Schedule(action=start_action("SchedGreet", f"wf-{schedule_id}", tq), spec=manual_only())
    )
    async with worker(client, tq):
        desc = await trigger_and_wait(handle)
        (started,) = recent_ids(desc)
        await client.get_workflow_handle(started).result()
    await eventually(
        lambda: list_schedule_ids(client, f"ScheduleId = {quote(schedule_id)}"),
        lambda ids: ids == [schedule_id],
        what="the schedule to be listed",
    )
    await handle.delete()
    with pytest.raises(RPCError) as err:
        await handle.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await handle.delete()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    await eventually(
        lambda: list_schedule_ids(client, f"ScheduleId = {quote(schedule_id)}"),
        lambda ids: ids == [],
        what="the deleted schedule to leave the list",
    )
    assert await status_of(client, started) == WorkflowExecutionStatus.COMPLETED
    assert await scheduled_workflow_ids(client, schedule_id, 1) == [started]


async def test_create_with_trigger_immediately_and_backfill(client):
    """create_schedule(trigger_immediately=True, backfill=[...]) takes those actions as part
    of creating the schedule."""
    schedule_id = sched_id("initial-patch")
    wf_id = f"wf-{schedule_id}"
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action("SchedGreet", wf_id, unique("tq-nobody")),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
            state=ScheduleState(paused=True),
        ),
        trigger_immediately=True,
        backfill=[ScheduleBackfill(start_at=at(2025, 1, 1, 0), end_at=at(2025, 1, 1, 2))],
    )
    desc = await describe_until(handle, lambda d: d.info.num_actions == 4, "four actions")
    ids = recent_ids(desc)
    backfilled = {nominal_id(wf_id, at(2025, 1, 1, h)) for h in range(3)}
    assert set(ids) >= backfilled
    (triggered,) = set(ids) - backfilled
    assert abs((nominal_of(wf_id, triggered) - datetime.now(UTC)).total_seconds()) < 60
    for wf in ids:
        await client.get_workflow_handle(wf).terminate()
    await handle.delete()


async def test_backfill_starts_one_run_per_nominal_time_in_range(client):
    """Backfilling 10:00–10:05 of a 1-minute interval with ALLOW_ALL starts exactly six runs
    (both ends included), named by their nominal times, even while the schedule is paused and
    long after its catch-up window."""
    schedule_id, tq = sched_id("backfill"), unique("tq-sched-backfill")
    wf_id = f"wf-{schedule_id}"
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action("SchedGreet", wf_id, tq, "backfill"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))]),
            # Backfills are not held to the catch-up window.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL, catchup_window=timedelta(seconds=10)),
            state=ScheduleState(paused=True),
        ),
    )
    async with worker(client, tq):
        await handle.backfill(
            ScheduleBackfill(start_at=at(2025, 1, 1, 10, 0), end_at=at(2025, 1, 1, 10, 5),
                             overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        )
        desc = await describe_until(handle, lambda d: d.info.num_actions == 6, "six backfilled actions")
        expected = [at(2025, 1, 1, 10, m) for m in range(6)]
        assert [a.scheduled_at for a in desc.info.recent_actions] == expected
        assert recent_ids(desc) == [nominal_id(wf_id, t) for t in expected]
        assert desc.info.num_actions_missed_catchup_window == 0
        for action in desc.info.recent_actions:
            assert action.started_at > action.scheduled_at + timedelta(days=1)  # started now, not then
            run = client.get_workflow_handle(action.action.workflow_id)
            assert await run.result() == "hello backfill"
            wf_desc = await run.describe()
            assert wf_desc.typed_search_attributes.get(SCHEDULED_START_TIME) == action.scheduled_at

        # A second, disjoint range adds its own runs; a one-instant range that hits a
        # nominal time starts that one.
        await handle.backfill(
            ScheduleBackfill(start_at=at(2025, 2, 1, 8, 30), end_at=at(2025, 2, 1, 8, 31),
                             overlap=ScheduleOverlapPolicy.ALLOW_ALL),
            ScheduleBackfill(start_at=at(2025, 3, 1, 7, 0), end_at=at(2025, 3, 1, 7, 0),
                             overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        )
        desc = await describe_until(handle, lambda d: d.info.num_actions == 9, "nine actions")
        assert recent_ids(desc)[-3:] == [
            nominal_id(wf_id, at(2025, 2, 1, 8, 30)),
            nominal_id(wf_id, at(2025, 2, 1, 8, 31)),
            nominal_id(wf_id, at(2025, 3, 1, 7, 0)),
        ]
        ids = await scheduled_workflow_ids(client, schedule_id, 9)
        assert len(ids) == 9
        for wf in ids:
            await client.get_workflow_handle(wf).result()
    assert (await handle.describe()).schedule.state.paused
    await handle.delete()


# -- overlap policies -----------------------------------------------------------------


async def _blocker_schedule(client: Client, prefix: str, overlap: ScheduleOverlapPolicy) -> tuple[ScheduleHandle, str]:
    schedule_id = sched_id(prefix)
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action("SchedBlocker", f"wf-{schedule_id}", f"tq-{schedule_id}"),
            spec=manual_only(),
            policy=SchedulePolicy(overlap=overlap),
        ),
    )
    return handle, f"tq-{schedule_id}"


async def _release(client: Client, wf_id: str) -> None:
    await client.get_workflow_handle(wf_id).signal(SchedBlocker.release)


async def test_overlap_skip_skips_while_a_run_is_open(client):
    """SKIP: triggers while a run is open are skipped and counted; none is started later."""
    handle, tq = await _blocker_schedule(client, "skip", ScheduleOverlapPolicy.SKIP)
    async with worker(client, tq):
        first = await trigger_and_wait(handle)
        (wf1,) = running_ids(first)
        await trigger_and_wait(handle)
        desc = await trigger_and_wait(handle)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (1, 2)
        assert running_ids(desc) == [wf1] and recent_ids(desc) == [wf1]
        assert desc.raw_description.info.buffer_size == 0

        await _release(client, wf1)
        desc = await describe_until(handle, lambda d: not d.info.running_actions, "the run to close")
        await asyncio.sleep(1)
        desc = await handle.describe()
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (1, 2)
    assert await scheduled_workflow_ids(client, handle.id, 1) == [wf1]
    await handle.delete()


async def test_overlap_buffer_one_keeps_one_start_for_later(client):
    """BUFFER_ONE: the first overlapping trigger is buffered and starts when the open run
    closes; a further one is skipped."""
    handle, tq = await _blocker_schedule(client, "buffer-one", ScheduleOverlapPolicy.BUFFER_ONE)
    async with worker(client, tq):
        (wf1,) = running_ids(await trigger_and_wait(handle))
        buffered = await trigger_and_wait(handle)
        assert buffered.raw_description.info.buffer_size == 1
        desc = await trigger_and_wait(handle)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (1, 1)
        assert desc.raw_description.info.buffer_size == 1
        assert running_ids(desc) == [wf1]

        await _release(client, wf1)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 2 and d.info.running_actions,
                                    "the buffered start")
        (wf2,) = running_ids(desc)
        assert wf2 != wf1 and recent_ids(desc) == [wf1, wf2]
        assert desc.raw_description.info.buffer_size == 0
        assert await status_of(client, wf1) == WorkflowExecutionStatus.COMPLETED
        await _release(client, wf2)
        desc = await describe_until(handle, lambda d: not d.info.running_actions, "the buffered run to close")
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (2, 1)
    await handle.delete()


async def test_overlap_buffer_all_runs_every_trigger_in_turn(client):
    """BUFFER_ALL: every overlapping trigger is buffered; they start one after another as
    each run closes, in trigger order."""
    handle, tq = await _blocker_schedule(client, "buffer-all", ScheduleOverlapPolicy.BUFFER_ALL)
    async with worker(client, tq):
        (wf1,) = running_ids(await trigger_and_wait(handle))
        await trigger_and_wait(handle)
        desc = await trigger_and_wait(handle)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (1, 0)
        assert desc.raw_description.info.buffer_size == 2

        await _release(client, wf1)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 2 and d.info.running_actions, "run 2")
        (wf2,) = running_ids(desc)
        assert desc.raw_description.info.buffer_size == 1
        await _release(client, wf2)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 3 and d.info.running_actions, "run 3")
        (wf3,) = running_ids(desc)
        assert desc.raw_description.info.buffer_size == 0
        assert recent_ids(desc) == [wf1, wf2, wf3] and len({wf1, wf2, wf3}) == 3
        times = [a.scheduled_at for a in desc.info.recent_actions]
        assert times == sorted(times)
        await _release(client, wf3)
        await describe_until(handle, lambda d: not d.info.running_actions, "run 3 to close")
    for wf in (wf1, wf2, wf3):
        assert await status_of(client, wf) == WorkflowExecutionStatus.COMPLETED
    await handle.delete()


async def test_overlap_cancel_other_cancels_the_open_run(client):
    """CANCEL_OTHER: a trigger while a run is open requests its cancellation (cause "cancelled
    by schedule overlap policy") and starts the new run once the old one is cancelled."""
    handle, tq = await _blocker_schedule(client, "cancel-other", ScheduleOverlapPolicy.CANCEL_OTHER)
    async with worker(client, tq):
        (wf1,) = running_ids(await trigger_and_wait(handle))
        await trigger_and_wait(handle)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 2 and d.info.running_actions, "run 2")
        (wf2,) = running_ids(desc)
        assert await status_of(client, wf1) == WorkflowExecutionStatus.CANCELED
        await trigger_and_wait(handle)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 3 and d.info.running_actions, "run 3")
        (wf3,) = running_ids(desc)
        assert recent_ids(desc) == [wf1, wf2, wf3]
        assert desc.info.num_actions_skipped_overlap == 0
        assert await status_of(client, wf2) == WorkflowExecutionStatus.CANCELED
        assert await status_of(client, wf3) == WorkflowExecutionStatus.RUNNING
        events = await history_events(client.get_workflow_handle(wf1))
        (requested,) = [e for e in events if e.HasField("workflow_execution_cancel_requested_event_attributes")]
        assert requested.workflow_execution_cancel_requested_event_attributes.cause == (
            "cancelled by schedule overlap policy"
        )
        await _release(client, wf3)
        await wait_status(client, wf3, WorkflowExecutionStatus.COMPLETED)
    await handle.delete()


async def test_overlap_terminate_other_terminates_the_open_run(client):
    """TERMINATE_OTHER: a trigger while a run is open terminates it (reason "terminated by
    schedule overlap policy") and starts the new run."""
    handle, tq = await _blocker_schedule(client, "terminate-other", ScheduleOverlapPolicy.TERMINATE_OTHER)
    async with worker(client, tq):
        (wf1,) = running_ids(await trigger_and_wait(handle))
        await trigger_and_wait(handle)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 2 and d.info.running_actions, "run 2")
        (wf2,) = running_ids(desc)
        await trigger_and_wait(handle)
        desc = await describe_until(handle, lambda d: d.info.num_actions == 3 and d.info.running_actions, "run 3")
        (wf3,) = running_ids(desc)
        assert recent_ids(desc) == [wf1, wf2, wf3]
        for wf in (wf1, wf2):
            assert await status_of(client, wf) == WorkflowExecutionStatus.TERMINATED
            last = (await history_events(client.get_workflow_handle(wf)))[-1]
            assert last.workflow_execution_terminated_event_attributes.reason == (
                "terminated by schedule overlap policy"
            )
        await _release(client, wf3)
        await wait_status(client, wf3, WorkflowExecutionStatus.COMPLETED)
    await handle.delete()


async def test_overlap_allow_all_runs_concurrently(client):
    """ALLOW_ALL: every trigger starts a run at once, all open together."""
    handle, tq = await _blocker_schedule(client, "allow-all", ScheduleOverlapPolicy.ALLOW_ALL)
    async with worker(client, tq):
        for _ in range(3):
            desc = await trigger_and_wait(handle)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (3, 0)
        assert desc.raw_description.info.buffer_size == 0
        ids = recent_ids(desc)
        assert len(set(ids)) == 3
        for wf in ids:
            assert await status_of(client, wf) == WorkflowExecutionStatus.RUNNING
        # (The reference does not list ALLOW_ALL runs among running_workflows: it does not
        # need to watch them. Not asserted either way.)
        for wf in ids:
            await _release(client, wf)
        for wf in ids:
            await wait_status(client, wf, WorkflowExecutionStatus.COMPLETED)
    await handle.delete()


async def test_trigger_overlap_overrides_the_schedule_policy(client):
    """trigger(overlap=ALLOW_ALL) starts a run although the schedule's SKIP policy would skip
    it; a plain trigger then skips."""
    handle, tq = await _blocker_schedule(client, "trigger-overlap", ScheduleOverlapPolicy.SKIP)
    async with worker(client, tq):
        await trigger_and_wait(handle)
        desc = await trigger_and_wait(handle, overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (2, 0)
        desc = await trigger_and_wait(handle)
        assert (desc.info.num_actions, desc.info.num_actions_skipped_overlap) == (2, 1)
        for wf in recent_ids(desc):
            await _release(client, wf)
            await wait_status(client, wf, WorkflowExecutionStatus.COMPLETED)
    await handle.delete()


# -- failures, results and limits ------------------------------------------------------


async def test_pause_on_failure_pauses_with_a_note(client):
    """With pause_on_failure a failed run pauses the schedule, noting
    "paused due to workflow failure: <workflow id>: <failure message>"."""
    schedule_id, tq = sched_id("pause-on-failure"), unique("tq-sched-pof")
    handle = await client.create_schedule(
        schedule_id,
        Schedule(
            action=start_action("SchedFails", f"wf-{schedule_id}", tq),
            spec=manual_only(),
            policy=SchedulePolicy(pause_on_failure=True),
        ),
    )
    async with worker(client, tq):
        desc = await trigger_and_wait(handle)
        (failed,) = recent_ids(desc)
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused after the failure")
    assert desc.schedule.state.note == f"paused due to workflow failure: {failed}: scheduled run fails"
    assert await status_of(client, failed) == WorkflowExecutionStatus.FAILED
    assert desc.info.num_actions == 1 and not desc.info.running_actions
    await handle.delete()


async def test_failure_without_pause_on_failure_keeps_running(client):
    """Without pause_on_failure a failed run leaves the schedule unpaused and it keeps acting."""
    schedule_id, tq = sched_id("no-pause-on-failure"), unique("tq-sched-nopof")
    handle = await client.create_schedule(
        schedule_id,
        Schedule(action=start_action("SchedFails", f"wf-{schedule_id}", tq), spec=manual_only()),
    )
    async with worker(client, tq):
        (failed,) = recent_ids(await trigger_and_wait(handle))
        await wait_status(client, failed, WorkflowExecutionStatus.FAILED)
        await describe_until(handle, lambda d: not d.info.running_actions, "the failed run to be noticed")
        desc = await trigger_and_wait(handle)
        assert desc.info.num_actions == 2 and not desc.schedule.state.paused
        assert desc.schedule.state.note is None
    await handle.delete()


async def test_last_completion_result_and_last_failure_reach_the_next_run(client):
    """Each run gets the previous run's result (and the last failure until a run succeeds),
    on its started event and through workflow.get_last_completion_result/get_last_failure."""
    schedule_id, tq = sched_id("chain"), unique("tq-sched-chain")
    handle = await client.create_schedule(
        schedule_id, Schedule(action=start_action("SchedChain", f"wf-{schedule_id}", tq), spec=manual_only())
    )
    ids: list[str] = []
    async with worker(client, tq):
        for n in range(1, 4):
            desc = await trigger_and_wait(handle)
            ids.append(recent_ids(desc)[-1])
            await describe_until(
                handle, lambda d: d.info.num_actions == n and not d.info.running_actions, f"run {n} to close"
            )
    assert await status_of(client, ids[0]) == WorkflowExecutionStatus.FAILED
    second = await client.get_workflow_handle(ids[1]).result()
    assert second == "previous=None failure=first run fails"
    third = await client.get_workflow_handle(ids[2]).result()
    assert third == f"previous={second} failure=None"

    started = [
        (await history_events(client.get_workflow_handle(wf)))[0].workflow_execution_started_event_attributes
        for wf in ids
    ]
    assert not started[0].HasField("last_completion_result") or not started[0].last_completion_result.payloads
    assert not started[0].HasField("continued_failure")
    assert started[1].continued_failure.message == "first run fails"
    assert not started[1].last_completion_result.payloads
    assert not started[2].HasField("continued_failure")
    assert [await client.data_converter.decode(started[2].last_completion_result.payloads)] == [[second]]
    await handle.delete()


async def test_limited_actions_count_down_and_stop(client):
    """remaining_actions decrements with each scheduled action and the schedule stops at
    zero (no future times); a manual trigger still runs and does not count."""
    schedule_id, tq = sched_id("limited"), unique("tq-sched-limited")
    async with worker(client, tq):
        handle = await client.create_schedule(
            schedule_id,
            Schedule(
                action=start_action("SchedGreet", f"wf-{schedule_id}", tq),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
                state=ScheduleState(limited_actions=True, remaining_actions=2),
            ),
        )
        desc = await handle.describe()
        assert desc.schedule.state.remaining_actions == 2 - desc.info.num_actions
        assert len(desc.info.next_action_times) == desc.schedule.state.remaining_actions
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 1, "a first action")
        assert desc.schedule.state.remaining_actions == 2 - desc.info.num_actions
        desc = await describe_until(handle, lambda d: d.schedule.state.remaining_actions == 0, "no actions left")
        assert desc.info.num_actions == 2
        assert desc.schedule.state.limited_actions
        assert list(desc.info.next_action_times) == []
        await asyncio.sleep(1.5)
        desc = await handle.describe()
        assert desc.info.num_actions == 2, "the schedule acted after its last remaining action"
        assert not desc.schedule.state.paused

        desc = await trigger_and_wait(handle)
        assert desc.info.num_actions == 3
        assert desc.schedule.state.remaining_actions == 0
    await handle.delete()


# -- list / count ---------------------------------------------------------------------


async def test_list_and_count_schedules_with_queries(sa_client):
    """ListSchedules returns each schedule's id, workflow type, spec, note, paused flag,
    recent and future actions, memo and search attributes; the query filters on ScheduleId,
    TemporalSchedulePaused and custom search attributes; CountSchedules agrees; workflow
    fields such as WorkflowType are refused."""
    client = sa_client
    prefix = unique("sched-list")
    paused_id, running_id = f"{prefix}-paused", f"{prefix}-running"
    await client.create_schedule(
        paused_id,
        Schedule(
            action=start_action("SchedGreet", f"wf-{paused_id}", "no-worker"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=1))]),
            state=ScheduleState(paused=True, note="listed paused"),
        ),
        memo={"listed": True},
        search_attributes=TypedSearchAttributes([SearchAttributePair(SA_INT, 4242)]),
    )
    await client.create_schedule(
        running_id,
        Schedule(
            action=start_action("SchedBlocker", f"wf-{running_id}", "no-worker"),
            spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(4)])]),
        ),
    )
    mine = f"ScheduleId STARTS_WITH {quote(prefix)}"
    listed = await eventually(
        lambda: list_schedule_ids(client, mine), lambda ids: len(ids) == 2, what="both schedules listed"
    )
    assert listed == sorted([paused_id, running_id])
    assert await count_schedules(client, mine) == 2

    entries = {s.id: s async for s in await client.list_schedules(mine)}
    paused = entries[paused_id]
    assert paused.schedule.action.workflow == "SchedGreet"
    assert paused.schedule.state.paused and paused.schedule.state.note == "listed paused"
    assert paused.schedule.spec.intervals == [
        ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=1))
    ]
    assert paused.info.next_action_times and paused.info.next_action_times[0].minute == 1
    assert list(paused.info.recent_actions) == []
    assert await paused.memo() == {"listed": True}
    assert paused.typed_search_attributes.get(SA_INT) == 4242
    running = entries[running_id]
    assert running.schedule.action.workflow == "SchedBlocker"
    assert not running.schedule.state.paused and running.schedule.state.note is None
    assert [c.hour for c in running.schedule.spec.calendars] == [(ScheduleRange(4),)]
    assert all(t.hour == 4 for t in running.info.next_action_times)

    for query, expected in [
        (f"{mine} AND TemporalSchedulePaused = true", [paused_id]),
        (f"{mine} AND TemporalSchedulePaused = false", [running_id]),
        (f"ScheduleId = {quote(running_id)}", [running_id]),
        (f"{mine} AND VisInt = 4242", [paused_id]),
        (f"{mine} AND ScheduleId != {quote(paused_id)}", [running_id]),
    ]:
        assert await list_schedule_ids(client, query) == expected, query
        assert await count_schedules(client, query) == len(expected), query

    # Pausing shows up in the list (visibility may lag).
    await client.get_schedule_handle(running_id).pause(note="now paused")
    await eventually(
        lambda: list_schedule_ids(client, f"{mine} AND TemporalSchedulePaused = true"),
        lambda ids: ids == sorted([paused_id, running_id]),
        what="the paused flag in the list",
    )
    # Without a query every schedule of the namespace is listed.
    assert {paused_id, running_id} <= set(await list_schedule_ids(client))
    assert await count_schedules(client) >= 2

    for query in ["WorkflowType = 'SchedGreet'", "ExecutionStatus = 'Running'", "StartTime > '2020-01-01T00:00:00Z'"]:
        with pytest.raises(RPCError) as err:
            await list_schedule_ids(client, query)
        field = query.split()[0]
        assert (err.value.status, err.value.message) == (
            RPCStatusCode.INVALID_ARGUMENT, f'invalid query filter for schedules: cannot filter on "{field}"'
        )
        with pytest.raises(RPCError) as err:
            await count_schedules(client, query)
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    with pytest.raises(RPCError) as err:
        await list_schedule_ids(client, "NoSuchAttribute = 1")
    assert (err.value.status, err.value.message) == (
        RPCStatusCode.INVALID_ARGUMENT, "invalid query: invalid search attribute: NoSuchAttribute"
    )
    for schedule_id in (paused_id, running_id):
        await client.get_schedule_handle(schedule_id).delete()


# -- matching times -------------------------------------------------------------------


async def test_matching_times_across_new_york_dst_transitions(client):
    """A daily 02:30 America/New_York calendar: on the spring-forward day 02:30 does not exist
    and is skipped; on the fall-back day it happens once. A daily 01:30 happens twice on the
    fall-back day (EDT, then EST)."""
    half_two = await paused_schedule(
        client,
        ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(2)], minute=[ScheduleRange(30)])],
            time_zone_name="America/New_York",
        ),
        prefix="dst",
    )
    assert await matching_times(client, half_two, at(2026, 3, 6), at(2026, 3, 11)) == [
        at(2026, 3, 6, 7, 30),  # EST, UTC-5
        at(2026, 3, 7, 7, 30),
        # 2026-03-08: clocks jump 02:00 -> 03:00, no 02:30
        at(2026, 3, 9, 6, 30),  # EDT, UTC-4
        at(2026, 3, 10, 6, 30),
    ]
    assert await matching_times(client, half_two, at(2026, 10, 30), at(2026, 11, 4)) == [
        at(2026, 10, 30, 6, 30),
        at(2026, 10, 31, 6, 30),
        at(2026, 11, 1, 7, 30),  # after the fall back, EST
        at(2026, 11, 2, 7, 30),
        at(2026, 11, 3, 7, 30),
    ]
    half_one = await paused_schedule(
        client,
        ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(1)], minute=[ScheduleRange(30)])],
            time_zone_name="America/New_York",
        ),
        prefix="dst-repeat",
    )
    assert await matching_times(client, half_one, at(2026, 10, 31), at(2026, 11, 3)) == [
        at(2026, 10, 31, 5, 30),
        at(2026, 11, 1, 5, 30),  # 01:30 EDT
        at(2026, 11, 1, 6, 30),  # 01:30 EST, an hour later
        at(2026, 11, 2, 6, 30),
    ]


async def test_matching_times_of_cron_with_names_ranges_and_steps(client):
    """`0 9-17/4 * JAN,MAR MON-WED` in UTC matches 09:00, 13:00 and 17:00 on Mondays to
    Wednesdays of January and March only."""
    schedule_id = await paused_schedule(
        client, ScheduleSpec(cron_expressions=["0 9-17/4 * JAN,MAR MON-WED"], time_zone_name="UTC"), prefix="cron-times"
    )
    hours = (9, 13, 17)
    assert await matching_times(client, schedule_id, at(2027, 1, 1), at(2027, 1, 8)) == [
        at(2027, 1, day, h) for day in (4, 5, 6) for h in hours
    ]
    # Nothing in February; March resumes on Monday the 1st.
    assert await matching_times(client, schedule_id, at(2027, 2, 1), at(2027, 3, 2)) == [
        at(2027, 3, 1, h) for h in hours
    ]


async def test_matching_times_honour_exclusions_and_bounds(client):
    """Skip calendars remove matching times; start_at/end_at bound the schedule; the listed
    range excludes its start and includes its end."""
    weekdays = await paused_schedule(
        client,
        ScheduleSpec(
            cron_expressions=["30 8 * * *"],
            skip=[
                ScheduleCalendarSpec(
                    second=[ScheduleRange(0, 59)], minute=[ScheduleRange(0, 59)], hour=[ScheduleRange(0, 23)],
                    day_of_week=[ScheduleRange(0), ScheduleRange(6)],
                ),
                ScheduleCalendarSpec(hour=[ScheduleRange(8)], minute=[ScheduleRange(30)],
                                     day_of_month=[ScheduleRange(6)], month=[ScheduleRange(1)]),
            ],
        ),
        prefix="skip",
    )
    # 2027-01-01 is a Friday; the weekend and January 6th are skipped.
    assert await matching_times(client, weekdays, at(2027, 1, 1), at(2027, 1, 8)) == [
        at(2027, 1, 1, 8, 30), at(2027, 1, 4, 8, 30), at(2027, 1, 5, 8, 30), at(2027, 1, 7, 8, 30),
    ]

    bounded = await paused_schedule(
        client,
        ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=6), offset=timedelta(hours=1))],
            start_at=at(2027, 1, 2), end_at=at(2027, 1, 3, 12),
        ),
        prefix="bounded",
    )
    desc = await client.get_schedule_handle(bounded).describe()
    assert (desc.schedule.spec.start_at, desc.schedule.spec.end_at) == (at(2027, 1, 2), at(2027, 1, 3, 12))
    assert await matching_times(client, bounded, at(2027, 1, 1), at(2027, 1, 5)) == [
        at(2027, 1, 2, 1), at(2027, 1, 2, 7), at(2027, 1, 2, 13), at(2027, 1, 2, 19),
        at(2027, 1, 3, 1), at(2027, 1, 3, 7),
    ]

    hourly = await paused_schedule(
        client, ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]), prefix="hourly"
    )
    assert await matching_times(client, hourly, at(2027, 1, 1, 0), at(2027, 1, 1, 3)) == [
        at(2027, 1, 1, 1), at(2027, 1, 1, 2), at(2027, 1, 1, 3),
    ]
    every_90m = await paused_schedule(client, ScheduleSpec(cron_expressions=["@every 90m"]), prefix="every")
    assert await matching_times(client, every_90m, at(2027, 1, 1, 0), at(2027, 1, 1, 6)) == [
        at(2027, 1, 1, 1, 30), at(2027, 1, 1, 3), at(2027, 1, 1, 4, 30), at(2027, 1, 1, 6),
    ]


# -- restart and visibility -------------------------------------------------------------


@pytest.mark.timeout(180)
async def test_schedule_survives_restart_and_catches_up_within_its_window(fresh_server):
    """After the server was down, a schedule takes the actions it missed while down if they
    are within its catch-up window (every missed second of a 1 s interval with a 1-minute
    window), and counts the ones outside it as missed (a 10 s window, 13 s down)."""
    client = await fresh_server.client()
    wide, narrow = sched_id("catchup-wide"), sched_id("catchup-narrow")
    for schedule_id, window in ((wide, timedelta(minutes=1)), (narrow, timedelta(seconds=10))):
        # ALLOW_ALL, no worker: the runs stay open and never hold the schedule back.
        await client.create_schedule(
            schedule_id,
            Schedule(
                action=start_action("SchedGreet", f"wf-{schedule_id}", unique("tq-nobody")),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL, catchup_window=window),
            ),
        )
    for schedule_id in (wide, narrow):
        await describe_until(client.get_schedule_handle(schedule_id), lambda d: d.info.num_actions >= 2, "actions")

    fresh_server.stop()
    stopped = datetime.now(UTC)
    await asyncio.sleep(DOWN_S)
    fresh_server.start()
    restarted = datetime.now(UTC)
    client = await fresh_server.client()

    for schedule_id in (wide, narrow):
        handle = client.get_schedule_handle(schedule_id)
        await describe_until(
            handle,
            lambda d: d.info.recent_actions and d.info.recent_actions[-1].scheduled_at > restarted,
            "actions after the restart",
            timeout=60,
        )
        await handle.pause()
        await describe_until(handle, lambda d: d.schedule.state.paused, "paused")

    wide_desc = await client.get_schedule_handle(wide).describe()
    wide_ids = await scheduled_workflow_ids(client, wide, wide_desc.info.num_actions)
    nominal = sorted(nominal_of(f"wf-{wide}", i) for i in wide_ids)
    assert len(nominal) == wide_desc.info.num_actions
    # Every second from the first action to the last, the down time included.
    assert [(b - a) for a, b in zip(nominal, nominal[1:])] == [timedelta(seconds=1)] * (len(nominal) - 1)
    assert nominal[0] < stopped and nominal[-1] > restarted
    assert sum(stopped < t < restarted for t in nominal) >= DOWN_S - 1
    assert wide_desc.info.num_actions_missed_catchup_window == 0

    narrow_desc = await client.get_schedule_handle(narrow).describe()
    assert narrow_desc.info.num_actions_missed_catchup_window >= 1
    for action in narrow_desc.info.recent_actions:
        late = action.started_at - action.scheduled_at
        assert late <= timedelta(seconds=10) + timedelta(seconds=2), (action.scheduled_at, action.started_at)
    narrow_ids = await scheduled_workflow_ids(client, narrow, narrow_desc.info.num_actions)
    narrow_nominal = sorted(nominal_of(f"wf-{narrow}", i) for i in narrow_ids)
    gaps = [(b - a) for a, b in zip(narrow_nominal, narrow_nominal[1:]) if b - a > timedelta(seconds=1)]
    assert gaps, "the narrow window should have missed some seconds"
    expected_total = (narrow_nominal[-1] - narrow_nominal[0]).total_seconds() + 1
    assert len(narrow_nominal) + narrow_desc.info.num_actions_missed_catchup_window == expected_total


async def test_scheduler_workflows_are_not_listed(client):
    """Only the workflows a schedule starts are visible: ListWorkflowExecutions and
    CountWorkflowExecutions show no internal scheduler workflow for the schedule."""
    schedule_id, tq = sched_id("hidden"), unique("tq-sched-hidden")
    handle = await client.create_schedule(
        schedule_id, Schedule(action=start_action("SchedGreet", f"wf-{schedule_id}", tq), spec=manual_only())
    )
    async with worker(client, tq):
        (started,) = recent_ids(await trigger_and_wait(handle))
        await client.get_workflow_handle(started).result()
    assert await scheduled_workflow_ids(client, schedule_id, 1) == [started]

    everything = await list_executions(client, "")
    assert started in {wf.id for wf in everything}
    assert not [wf.id for wf in everything if wf.id.startswith(SCHEDULER_WORKFLOW_PREFIX)]
    assert not [wf.id for wf in everything if schedule_id == wf.id or wf.workflow_type.startswith("temporal-sys")]
    for query in [
        f"WorkflowId = {quote(SCHEDULER_WORKFLOW_PREFIX + schedule_id)}",
        f"WorkflowId STARTS_WITH {quote(SCHEDULER_WORKFLOW_PREFIX)}",
        f"WorkflowId = {quote(schedule_id)}",
    ]:
        assert await list_executions(client, query) == [], query
        assert (await client.count_workflows(query)).count == 0, query
    prefix_query = f"WorkflowId STARTS_WITH {quote(f'wf-{schedule_id}')}"
    assert [wf.id for wf in await list_executions(client, prefix_query)] == [started]
    await handle.delete()
