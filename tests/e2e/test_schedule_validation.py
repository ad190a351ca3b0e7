"""A schedule that could never start its workflows is refused when it is made.

The reference checks a schedule's own memo and search attributes, and what its action
starts each workflow with (input, memo, search attributes), as StartWorkflowExecution
checks them: sizes against the namespace's limits, attributes against its registry. A
server that took such a schedule would fail every one of its actions instead.

Uses the `sa_client` server (custom attributes of helpers.CUSTOM_SEARCH_ATTRIBUTES).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from helpers import unique

UNREGISTERED = SearchAttributeKey.for_keyword("ChronicleNeverRegistered")
# Registered as an Int: a Keyword value is of the wrong type.
INT_AS_KEYWORD = SearchAttributeKey.for_keyword("VisInt")
KEYWORD = SearchAttributeKey.for_keyword("VisKeyword")
OVER_TWO_MIB = "x" * (2 * 1024 * 1024 + 100)


def _attributes(key, value) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(key, value)])


def _schedule(**action) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow("Never", id=unique("wf"), task_queue=unique("tq"), **action),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
    )


CASES = {
    "schedule memo over the limit": ({"memo": {"m": OVER_TWO_MIB}}, {}, "Memo size exceeds limit."),
    "schedule attribute not registered": (
        {"search_attributes": _attributes(UNREGISTERED, "v")},
        {},
        "ChronicleNeverRegistered",
    ),
    "action input over the limit": ({}, {"args": [OVER_TWO_MIB]}, "Blob data size exceeds limit."),
    "action memo over the limit": ({}, {"memo": {"m": OVER_TWO_MIB}}, "Blob data size exceeds limit."),
    "action attribute not registered": (
        {},
        {"typed_search_attributes": _attributes(UNREGISTERED, "v")},
        "ChronicleNeverRegistered",
    ),
    "action attribute of the wrong type": (
        {},
        {"typed_search_attributes": _attributes(INT_AS_KEYWORD, "seven")},
        "VisInt",
    ),
    "action attribute value too long": (
        {},
        {"typed_search_attributes": _attributes(KEYWORD, "v" * 3000)},
        "VisKeyword",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_create_refuses_what_a_start_would_refuse(sa_client, case):
    options, action, message = CASES[case]
    schedule_id = unique("sched-refused")
    with pytest.raises(RPCError) as refused:
        await sa_client.create_schedule(schedule_id, _schedule(**action), **options)
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT, refused.value
    assert message in refused.value.message, refused.value.message
    listed = [s.id async for s in await sa_client.list_schedules()]
    assert schedule_id not in listed


async def test_update_refuses_an_action_a_start_would_refuse_and_keeps_the_schedule(sa_client):
    handle = await sa_client.create_schedule(unique("sched-update"), _schedule())

    def bad_update(input) -> ScheduleUpdate:
        schedule = input.description.schedule
        schedule.action.typed_search_attributes = _attributes(UNREGISTERED, "v")
        return ScheduleUpdate(schedule=schedule)

    with pytest.raises(RPCError) as refused:
        await handle.update(bad_update)
    assert refused.value.status == RPCStatusCode.INVALID_ARGUMENT, refused.value
    assert "ChronicleNeverRegistered" in refused.value.message
    kept = (await handle.describe()).schedule.action
    assert kept.typed_search_attributes == TypedSearchAttributes.empty
    await handle.delete()
