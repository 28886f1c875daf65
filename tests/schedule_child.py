"""A worker process for the cross-process schedule tests.

Usage: schedule_child.py DB END [decorated]

``$LEGATO_SCHED_GO`` names a file: durable time stands still until it exists,
so several workers start ticking together. Each tick this worker found handled
by another prints ``lost <schedule>``.

Runs a worker whose durable time starts at ``T0`` and jumps (a
``VirtualClock``) up to ``END`` (epoch seconds), never past it: it fires
every tick up to ``END`` that no other worker fired first. Prints ``ready``
once open. With ``LEGATO_SCHED_HANG=1`` the ``sched_hang`` step hangs (until
SIGKILL). ``decorated`` defines a ``@workflow(schedule=...)`` too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import legato
from schedule_workflows import T0, Horizon

if len(sys.argv) > 3 and sys.argv[3] == "decorated":
    @legato.workflow(name="sched_every_ten", schedule="*/10 * * * *")
    async def every_ten() -> str | None:
        when = legato.scheduled_time()
        return None if when is None else when.isoformat()


class _Lost(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "another worker handled it first" in record.getMessage():
            print(f"lost {record.args[0] if record.args else ''}", flush=True)


async def main(db: str, end: float) -> None:
    log = logging.getLogger("legato.schedules")
    log.setLevel(logging.DEBUG)
    log.addHandler(_Lost())
    clock = Horizon(T0, end, go=os.environ.get("LEGATO_SCHED_GO"))
    async with legato.Runtime(db, clock=clock, lease=0.5):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
