"""Workflows and a clock for the schedule tests (imported by them and by schedule_child.py)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import legato

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z: on the hour, so minute ticks are T0 + 60 * k
MINUTE = "* * * * *"


def tick_at(k: int) -> float:
    return T0 + 60.0 * k


def run_at(schedule: str, k: int) -> str:
    """The id of ``schedule``'s run for tick ``k`` (``T0 + k`` minutes)."""
    return f"{schedule}@{datetime.fromtimestamp(tick_at(k), UTC):%Y-%m-%dT%H:%M:%SZ}"


@legato.workflow(name="sched_tick")
async def tick() -> str | None:
    when = legato.scheduled_time()
    return None if when is None else when.isoformat()


@legato.workflow(name="sched_echo", queue="sched_queue")
async def echo(text: str, times: int = 1) -> list[str | None]:
    """Queued by default; returns its arguments and its tick."""
    when = legato.scheduled_time()
    return [text * times, None if when is None else when.isoformat()]


@legato.workflow(name="sched_gate")
async def gate() -> str:
    """Runs until signalled ``go``: an unfinished previous run for the overlap policies."""
    await legato.wait_for_signal("go")
    return legato.workflow_id()


@legato.step
async def note(workflow_id: str) -> None:
    print(f"started {workflow_id}", flush=True)
    if os.environ.get("LEGATO_SCHED_HANG"):
        await asyncio.Event().wait()  # until SIGKILL


@legato.workflow(name="sched_hang")
async def hang() -> None:
    await note(legato.workflow_id())


class Horizon:
    """Durable time that jumps like a ``VirtualClock`` but never past ``end``.

    A worker process on it fires every tick up to ``end`` and then no more,
    so a test knows exactly how many ticks there are.
    """

    def __init__(self, start: float, end: float, go: str | None = None) -> None:
        self.inner = legato.VirtualClock(start)
        self.end = end
        self.go = go  # a file: time stands still until it exists (a start line for workers)

    def now(self) -> float:
        return self.inner.now()

    async def sleep_until(self, deadline: float) -> None:
        while self.go is not None and not os.path.exists(self.go):  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.005)
        if deadline > self.end:
            await asyncio.Event().wait()  # time stops at the horizon
        await self.inner.sleep_until(deadline)
