"""Workflows for the children-on-queues tests, and a worker process that runs them.

Usage: child_queues_child.py DB LOG N — start ``fan_out(N)`` as ``fan`` and
serve until killed. Each child's step appends ``<child id> <pid>`` to LOG and
prints ``done <child id>`` when it ends. With N = 0 it only serves (queue
``shared_fanout`` too), after printing ``ready``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import legato
from legato import Queue

FANOUT = Queue("fanout", concurrency=5)
# neither process may run all 5 at once: both take part
SHARED_FANOUT = Queue("shared_fanout", concurrency=5, worker_concurrency=3)
PEAK: dict[str, int] = {}  # the most children's steps running at once in this process
_running = [0]


@legato.step
async def square(n: int) -> int:
    _running[0] += 1
    PEAK["max"] = max(PEAK.get("max", 0), _running[0])
    try:
        await asyncio.sleep(float(os.environ.get("LEGATO_CHILDQ_STEP", "0.001")))
    finally:
        _running[0] -= 1
    workflow_id = legato.workflow_id()
    path = os.environ.get("LEGATO_CHILDQ_LOG")
    if path:
        with open(path, "a") as log:  # noqa: ASYNC230
            log.write(f"{workflow_id} {os.getpid()}\n")
        print(f"done {workflow_id}", flush=True)
    return n * n


@legato.workflow(name="childq_square", queue=FANOUT)
async def square_child(n: int) -> int:
    return await square(n)


@legato.workflow(name="childq_plain")
async def plain_square(n: int) -> int:
    return await square(n)


@legato.workflow(name="childq_fan_out")
async def fan_out(n: int) -> list[int]:
    """Start ``n`` children on the queue, then gather them."""
    handles = [await legato.start_child(plain_square, i, queue=FANOUT) for i in range(n)]
    return [await h.result() for h in handles]


@legato.workflow(name="childq_fan_out_called")
async def fan_out_called(n: int) -> list[int]:
    """Call ``n`` children whose ``@workflow(queue=...)`` names the queue."""
    return list(await asyncio.gather(*(square_child(i) for i in range(n))))


@legato.step
async def timed_square(n: int) -> int:
    start = time.time()
    await asyncio.sleep(0.01)
    with open(os.environ["LEGATO_CHILDQ_LOG"], "a") as log:  # noqa: ASYNC230
        log.write(f"{legato.workflow_id()} {os.getpid()} {start!r} {time.time()!r}\n")
    return n * n


@legato.workflow(name="childq_timed", queue=SHARED_FANOUT)
async def timed_child(n: int) -> int:
    return await timed_square(n)


@legato.workflow(name="childq_fan_out_shared")
async def fan_out_shared(n: int) -> list[int]:
    """Start ``n`` children on the shared queue (by their workflow's queue), then gather."""
    handles = [await legato.start_child(timed_child, i) for i in range(n)]
    return [await h.result() for h in handles]


async def main(db: str, n: int) -> None:
    async with legato.Runtime(db, queues=[FANOUT, SHARED_FANOUT], lease=0.5) as rt:
        if n:
            await rt.start(fan_out, n, id="fan")
        else:
            print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ["LEGATO_CHILDQ_LOG"] = sys.argv[2]
    os.environ.setdefault("LEGATO_CHILDQ_STEP", "0.02")
    asyncio.run(main(sys.argv[1], int(sys.argv[3])))
