"""A worker in its own process, for tests that need a worker with no shared state (no
workflow cache) with the test process: `WorkerProcess` in helpers.py runs this file.

    python worker_process.py ADDRESS NAMESPACE TASK_QUEUE MODULE \
        [--workflows A,B] [--activities f,g] [--sticky-timeout SECONDS]

MODULE is imported from this directory; the names are attributes of it. Prints "ready" once
the worker runs, then serves until SIGTERM/SIGINT (graceful shutdown) or SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402


def _names(value: str) -> list[str]:
    return [n for n in value.split(",") if n]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("namespace")
    parser.add_argument("task_queue")
    parser.add_argument("module")
    parser.add_argument("--workflows", type=_names, default=[])
    parser.add_argument("--activities", type=_names, default=[])
    parser.add_argument("--sticky-timeout", type=float, default=None)
    args = parser.parse_args()

    module = importlib.import_module(args.module)
    client = await Client.connect(args.address, namespace=args.namespace)
    options = {}
    if args.sticky_timeout is not None:
        options["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=args.sticky_timeout)
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=[getattr(module, n) for n in args.workflows],
        activities=[getattr(module, n) for n in args.activities],
        workflow_runner=UnsandboxedWorkflowRunner(),
        **options,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
