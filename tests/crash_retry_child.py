"""A worker process for the retry crash test; also imported by the test to recover.

Usage: crash_retry_child.py DB WORKFLOW_ID

``flaky`` appends the time to the file named by ``LEGATO_TEST_LOG`` each time
its body runs, prints ``attempt-N``, and fails its first two runs (counted
across processes through that file). Its real-clock retry waits 0.3 s after
the first failure and 3 s after the second: the test kills the worker during
that second wait.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import legato
from legato.resilience import Retry

RETRY = Retry(attempts=3, initial=0.3, backoff=10, jitter=0)


@legato.step(retry=RETRY)
async def flaky() -> str:
    log = Path(os.environ["LEGATO_TEST_LOG"])
    with log.open("a") as f:  # noqa: ASYNC230
        f.write(f"{time.time()!r}\n")
    runs = len(log.read_text().split())  # noqa: ASYNC240
    print(f"attempt-{runs}", flush=True)
    if runs <= 2:
        raise ConnectionError(f"run {runs} failed")
    return f"ok after {runs} runs"


@legato.workflow(name="retry_crash")
async def retry_crash() -> str:
    return await flaky()


async def main(db: str, workflow_id: str) -> None:
    async with legato.Runtime(db) as rt:
        await rt.start(retry_crash, id=workflow_id)
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
