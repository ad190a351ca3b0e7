"""The README's commands, run as written.

Every `sh` block of README.md preceded by `<!-- checked: NAME -->` is read from the file and
run here word for word, so the README and CI cannot drift apart. The environment only moves
things out of the user's way (a private data directory, an install root, a fresh database, a
free port when the default one is taken); the commands themselves are never rewritten, except
that the production block is also run with each other example configuration, which the
README says it works with.

    .venv/bin/python -m pytest tests/readme    # after scripts/e2e-setup.sh
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

import backends  # noqa: E402
from cli import cli_path  # noqa: E402

DEFAULT_ADDRESS = "127.0.0.1:7233"
# `cargo run` may still have to build the binary when this runs on its own.
READY_TIMEOUT_S = float(os.environ.get("CHRONICLE_README_READY_TIMEOUT", "900"))
MARKER = re.compile(r"<!-- checked: (?P<name>[\w-]+) -->\n```sh\n(?P<body>.*?)```", re.S)


def readme_blocks() -> dict[str, list[str]]:
    """Each checked block's commands, comments and blank lines dropped."""
    text = (REPO_ROOT / "README.md").read_text()
    blocks: dict[str, list[str]] = {}
    for match in MARKER.finditer(text):
        commands = []
        for line in match["body"].splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
        blocks[match["name"]] = commands
    return blocks


BLOCKS = readme_blocks()


def block(name: str) -> list[str]:
    assert name in BLOCKS, f"README.md has no block marked <!-- checked: {name} -->"
    return BLOCKS[name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def temporal(*args: str, address: str, check: bool = True) -> subprocess.CompletedProcess:
    cli = cli_path()
    assert cli, "the temporal CLI comes with the venv: run scripts/e2e-setup.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    return subprocess.run(
        [cli, *args, "--address", address, "--disable-config-file", "--disable-config-env"],
        capture_output=True, text=True, timeout=60, check=check, env=env,
    )


class Background:
    """A README command running in its own process group, its output kept in a file."""

    def __init__(self, command: str, env: dict[str, str], log: Path, cwd: Path = REPO_ROOT) -> None:
        self.command = command
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                command, shell=True, cwd=cwd, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def wait_until_namespace_answers(self, address: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"`{self.command}` exited with {self.proc.returncode}:\n{self.tail()}")
            if temporal("operator", "namespace", "describe", "default",
                        address=address, check=False).returncode == 0:
                return
            time.sleep(0.5)
        pytest.fail(f"`{self.command}` did not answer within {READY_TIMEOUT_S}s:\n{self.tail()}")

    def stop(self) -> int:
        """SIGTERM, as an operator would; the whole group, since `cargo run` has a child."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                pytest.fail(f"`{self.command}` ignored SIGTERM:\n{self.tail()}")
        return self.proc.returncode

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


def server_env(tmp: Path, port: int) -> tuple[dict[str, str], str]:
    """The user's environment with a private data directory; a free port if 7233 is taken."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_")}
    env["XDG_DATA_HOME"] = str(tmp / "data")
    if port_taken(7233):
        env["CHRONICLE_PORT"] = str(port)
        return env, f"127.0.0.1:{port}"
    return env, DEFAULT_ADDRESS


def test_ci_runs_the_readme_test_command():
    [command] = block("test")
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(rf"^exec {re.escape(command)}\s*$", ci, re.M), (
        f".ci/run must run the README's test command `{command}`:\n{ci}"
    )


def test_long_runs_select_tests():
    """The long property-test runs are too long for CI; each must still select tests, so a
    renamed test cannot leave the README's command running nothing."""
    commands = block("long-runs")
    assert commands
    for command in commands:
        variables, args = [], shlex.split(command)
        while "=" in args[0]:
            variables.append(args.pop(0))
        assert args[:3] == ["cargo", "nextest", "run"], command
        assert any(v.startswith("PROPTEST_CASES=") for v in variables), command
        listed = subprocess.run(["cargo", "nextest", "list", *args[3:]], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=900)
        assert listed.returncode == 0, listed.stderr[-3000:]
        selected = [line for line in listed.stdout.splitlines() if line.strip()]
        assert selected, f"`{command}` selects no test:\n{listed.stdout}"


def test_start_command_serves_the_default_namespace(tmp_path: Path):
    [command] = block("start")
    env, address = server_env(tmp_path, free_port())
    server = Background(command, env, tmp_path / "start.log")
    try:
        server.wait_until_namespace_answers(address)
        described = temporal("operator", "namespace", "describe", "default", address=address)
        assert "default" in described.stdout
        for cli_command in block("cli"):
            args = shlex.split(cli_command)
            assert args[0] == "temporal"
            # The README names the default address; a taken 7233 moved the server.
            args = [address if a == DEFAULT_ADDRESS else a for a in args[1:]]
            listed = subprocess.run([cli_path(), *args], capture_output=True, text=True,
                                    timeout=60)
            assert listed.returncode == 0, listed.stderr
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{server.tail()}"
    assert (tmp_path / "data" / "chronicle" / "dev.db").is_file(), "the default database file"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs the README's install block into a private root; returns its bin directory."""
    root = tmp_path_factory.mktemp("install")
    env = {**os.environ, "CARGO_INSTALL_ROOT": str(root)}
    for command in block("install"):
        done = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=1800)
        assert done.returncode == 0, f"`{command}` failed:\n{done.stderr[-3000:]}"
    assert (root / "bin" / "chronicle").is_file()
    return root / "bin"


def production_commands(config: str) -> list[str]:
    commands = block("production")
    assert all("config/postgres.toml" in c for c in commands), commands
    return [c.replace("config/postgres.toml", config) for c in commands]


@pytest.mark.parametrize("config", ["config/postgres.toml", "config/mysql.toml",
                                    "config/sqlite.toml"])
def test_production_commands_with_each_example_config(config: str, installed: Path,
                                                      tmp_path: Path):
    kind = tomllib.loads((REPO_ROOT / config).read_text())["persistence"]["backend"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_")}
    env["PATH"] = f"{installed}{os.pathsep}{env['PATH']}"
    env["CHRONICLE_SERVER_IP"] = "127.0.0.1"
    env["CHRONICLE_SERVER_PORT"] = str(port)
    database = None
    if kind == "sqlite":
        env["CHRONICLE_PERSISTENCE_DSN"] = str(tmp_path / "chronicle.db")
    else:
        database, env["CHRONICLE_PERSISTENCE_DSN"] = backends.create_database(kind)
    *setup, serve = production_commands(config)
    try:
        for command in setup:
            done = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"`{command}` failed:\n{done.stderr}"
        server = Background(serve, env, tmp_path / "serve.log")
        try:
            server.wait_until_namespace_answers(f"127.0.0.1:{port}")
        finally:
            code = server.stop()
        assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{server.tail()}"
    finally:
        if database:
            backends.drop_database(kind, database)



def test_tls_commands(installed: Path, tmp_path: Path):
    """The TLS section: its certificates, start-dev serving mTLS with them, and the CLI
    connecting with the client's certificate (and refused without it)."""
    for command in block("tls-certs"):
        done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"`{command}` failed:\n{done.stderr}"
    [command] = block("tls-start")
    env, address = server_env(tmp_path, free_port())
    env["PATH"] = f"{installed}{os.pathsep}{env['PATH']}"
    [cli_command] = block("tls-cli")
    args = shlex.split(cli_command)
    assert args[0] == "temporal"
    args = [cli_path(), *(address if a == DEFAULT_ADDRESS else a for a in args[1:])]
    run = lambda argv: subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,  # noqa: E731
                                      timeout=60, env=env)
    server = Background(command, env, tmp_path / "tls.log", cwd=tmp_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (listed := run(args)).returncode != 0:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`{cli_command}` failed: {listed.stderr}\n{server.tail()}")
            time.sleep(0.5)
        cert = args.index("--tls-cert-path")
        without_cert = args[:cert] + args[cert + 4:]
        assert "--tls-key-path" not in without_cert
        assert run(without_cert).returncode != 0
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{server.tail()}"
