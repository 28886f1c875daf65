"""A worker process for the cross-process queue test: run queue ``shared`` until killed.

Usage: queue_child.py DB LOG

Each ``timed`` workflow's step prints ``start <id>`` and appends ``<id> <pid>
<start> <end>`` (real time) to LOG, so the test can check how many ran at once
across processes. With ``LEGATO_QUEUE_HANG=1`` a step hangs (until SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import legato
from legato import Queue

SHARED = Queue("shared", concurrency=3, worker_concurrency=2)
SINGLE = Queue("single", concurrency=1)
KEYED = Queue("keyed", concurrency=6, worker_concurrency=2, key_concurrency=2)


@legato.step
async def hold(workflow_id: str) -> None:
    start = time.time()
    print(f"start {workflow_id}", flush=True)
    if os.environ.get("LEGATO_QUEUE_HANG"):
        await asyncio.Event().wait()
    await asyncio.sleep(0.1)
    end = time.time()
    with open(os.environ["LEGATO_QUEUE_LOG"], "a") as log:  # noqa: ASYNC230
        log.write(f"{workflow_id} {os.getpid()} {start!r} {end!r}\n")


@legato.workflow(name="queue_timed")
async def timed() -> None:
    await hold(legato.workflow_id())


async def main(db: str) -> None:
    async with legato.Runtime(db, queues=[SHARED, SINGLE, KEYED]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ["LEGATO_QUEUE_LOG"] = sys.argv[2]
    asyncio.run(main(sys.argv[1]))
