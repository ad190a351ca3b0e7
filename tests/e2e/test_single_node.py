"""An SQLite file serves one node: a second server on the same file is refused, clearly,
and the first goes on serving."""

from __future__ import annotations

import subprocess

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from conftest import _chronicle_bin, _free_port
from helpers import run_sync


def test_a_second_server_on_the_same_sqlite_file_is_refused(fresh_server) -> None:
    if fresh_server.is_reference or fresh_server.backend != "sqlite":
        pytest.skip("Chronicle's SQLite backend: a cluster runs on PostgreSQL or MySQL")
    second = subprocess.run(
        [
            _chronicle_bin(), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(_free_port()), "--db-filename", str(fresh_server.db_path),
        ],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert "is in use by another chronicle process" in output, output
    assert str(fresh_server.db_path) in output, output
    assert fresh_server.running

    async def still_serving() -> None:
        client = await fresh_server.client()
        await client.workflow_service.get_system_info(GetSystemInfoRequest())

    run_sync(still_serving())
