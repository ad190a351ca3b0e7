"""Records what a Temporal server answers for schedule specs, for the tests in src/tests.rs.

Usage: python record.py CASES.json [HOST:PORT] > OBSERVED.json

CASES.json is a list of {"id", "spec" (ScheduleSpec as protobuf JSON), optional "start"/"end"}
(an observed file works as input too). For each case a paused schedule is created in the
"default" namespace, described, asked for its matching times between start and end, and
deleted. The output adds "seed" (the jitter seed the server uses), and "error", or
"describe" and "times" (or "list_error").
"""
import asyncio
import json
import sys
import uuid

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.schedule.v1 import Schedule, ScheduleAction, ScheduleSpec, ScheduleState
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import NewWorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    CreateScheduleRequest,
    DeleteScheduleRequest,
    DescribeNamespaceRequest,
    DescribeScheduleRequest,
    ListScheduleMatchingTimesRequest,
)
from temporalio.client import Client


def ts(text):
    t = Timestamp()
    t.FromJsonString(text)
    return t


def message(e):
    return str(getattr(e, "message", e))


async def record(svc, nsid, case):
    sid = case["id"]
    res = {k: case[k] for k in ("id", "spec", "start", "end") if k in case}
    res["seed"] = nsid + "-" + sid
    action = ScheduleAction(
        start_workflow=NewWorkflowExecutionInfo(
            workflow_id="w-" + sid, workflow_type=WorkflowType(name="T"), task_queue=TaskQueue(name="q")
        )
    )
    sched = Schedule(
        spec=json_format.ParseDict(case["spec"], ScheduleSpec()), action=action, state=ScheduleState(paused=True)
    )
    try:
        await svc.create_schedule(
            CreateScheduleRequest(namespace="default", schedule_id=sid, schedule=sched, request_id=uuid.uuid4().hex)
        )
    except Exception as e:  # noqa: BLE001 - the error is the observation
        res["error"] = message(e)
        return res
    try:
        d = await svc.describe_schedule(DescribeScheduleRequest(namespace="default", schedule_id=sid))
        res["describe"] = json_format.MessageToDict(d.schedule.spec)
        if "start" in case:
            try:
                m = await svc.list_schedule_matching_times(
                    ListScheduleMatchingTimesRequest(
                        namespace="default", schedule_id=sid, start_time=ts(case["start"]), end_time=ts(case["end"])
                    )
                )
                res["times"] = [t.ToJsonString() for t in m.start_time]
            except Exception as e:  # noqa: BLE001
                res["list_error"] = message(e)
    finally:
        await svc.delete_schedule(DeleteScheduleRequest(namespace="default", schedule_id=sid))
    return res


async def main(cases, address):
    client = await Client.connect(address)
    svc = client.workflow_service
    ns = await svc.describe_namespace(DescribeNamespaceRequest(namespace="default"))
    out = [await record(svc, ns.namespace_info.id, case) for case in cases]
    print("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in out) + "\n]")


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        loaded = json.load(f)
    asyncio.run(main(loaded, sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:7233"))
