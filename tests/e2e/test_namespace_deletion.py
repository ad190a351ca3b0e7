"""Namespace deletion is stored work: a deletion a crash interrupts is finished at restart."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import DeleteNamespaceRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client

from helpers import eventually, list_ids, unique

WORKFLOWS = 5


async def _namespace_with_workflows(server) -> tuple[str, str]:
    """(name, id) of a new namespace with WORKFLOWS running workflows."""
    client = await server.client()
    name = f"ns-del-{uuid.uuid4().hex[:10]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention)
    )
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
    ns_client = await Client.connect(server.address, namespace=name)
    tq = unique("tq")
    for i in range(WORKFLOWS):
        await ns_client.start_workflow("Anything", id=unique(f"wf-del-{i}"), task_queue=tq)
    await eventually(lambda: list_ids(ns_client, ""), lambda ids: len(ids) == WORKFLOWS, what="the workflows")
    return name, described.namespace_info.id


async def _delete(server, name: str) -> str:
    client = await server.client()
    resp = await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=name))
    return resp.deleted_namespace


async def _wait_workflows_gone(server, renamed: str) -> None:
    # The deleted namespace answers under its new name, so what is left of it can be listed.
    ns_client = await Client.connect(server.address, namespace=renamed)
    await eventually(lambda: list_ids(ns_client, ""), lambda ids: ids == [], what="the workflows to be deleted")


def _deletion_job(db: Path, namespace_id: str) -> tuple[int, ...] | None:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT running FROM system_jobs WHERE job_id = ?", (f"delete-namespace/{namespace_id}",)
        ).fetchone()


def _sqlite_only(server) -> None:
    if server.is_reference or server.backend != "sqlite":
        pytest.skip("stages the crash in Chronicle's SQLite file")


def _copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{src}{suffix}")
        target = Path(f"{dst}{suffix}")
        target.unlink(missing_ok=True)
        if path.exists():
            shutil.copyfile(path, target)


async def test_a_deletion_survives_kill9_right_after_it_is_acknowledged(fresh_server):
    name, _ = await _namespace_with_workflows(fresh_server)
    renamed = await _delete(fresh_server, name)
    fresh_server.kill9()
    fresh_server.start()
    await _wait_workflows_gone(fresh_server, renamed)


@pytest.mark.timeout(180)
async def test_a_deletion_stored_before_a_crash_is_resumed_at_start(fresh_server):
    """The state a crash leaves between DeleteNamespace's answer and its job's run: the
    namespace marked deleted, the job stored as running, every workflow still there. It is
    staged from two real states of the database: one before the deletion and the namespace
    and job rows written by a deletion that ran."""
    _sqlite_only(fresh_server)
    name, namespace_id = await _namespace_with_workflows(fresh_server)
    db = fresh_server.db_path
    before = fresh_server.tmp_dir / "before.db"
    fresh_server.kill9()
    _copy_db(db, before)

    fresh_server.start()
    renamed = await _delete(fresh_server, name)
    await _wait_workflows_gone(fresh_server, renamed)
    fresh_server.stop()
    assert _deletion_job(db, namespace_id) == (0,), "the job is marked done"

    with closing(sqlite3.connect(before)) as conn:
        conn.execute("ATTACH DATABASE ? AS deleted", (str(db),))
        conn.execute(
            "UPDATE namespaces SET (name, data) = "
            "(SELECT name, data FROM deleted.namespaces WHERE id = ?) WHERE id = ?",
            (namespace_id, namespace_id),
        )
        conn.execute(
            "INSERT INTO system_jobs (namespace_id, kind, job_id, running, created, data) "
            "SELECT namespace_id, kind, job_id, 1, created, data FROM deleted.system_jobs WHERE job_id = ?",
            (f"delete-namespace/{namespace_id}",),
        )
        conn.commit()
        conn.execute("DETACH DATABASE deleted")
        assert conn.execute("SELECT count(*) FROM executions").fetchone()[0] >= WORKFLOWS
    _copy_db(before, db)

    fresh_server.start()
    await _wait_workflows_gone(fresh_server, renamed)
    await eventually(
        _async(lambda: _deletion_job(db, namespace_id)), lambda row: row == (0,), what="the job to be done"
    )
    with closing(sqlite3.connect(db)) as conn:
        left = conn.execute("SELECT count(*) FROM executions WHERE namespace_id = ?", (namespace_id,))
        assert left.fetchone()[0] == 0


def _async(fetch):
    async def call():
        return fetch()

    return call
