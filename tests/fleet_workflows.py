"""Workflows for the multi-process PostgreSQL tests, served by ``python -m legato worker``.

Each step body appends ``"<tag>-<i> <pid>"`` to the file named by
``LEGATO_TEST_LOG`` when it really runs, so a test can count runs per step and
tell which worker process ran them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import legato

STEP_SECONDS = float(os.environ.get("LEGATO_TEST_STEP_SECONDS", "0.05"))

# A machine whose clock is this many seconds ahead (a worker's time.time(), not the store's)
if SKEW := float(os.environ.get("LEGATO_TEST_CLOCK_SKEW", "0")):
    _real_time = time.time
    time.time = lambda: _real_time() + SKEW


def runs(log: Path) -> Counter[str]:
    """How often each step body ran."""
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def runners(log: Path) -> dict[str, list[int]]:
    """The pids that ran each step body, in order."""
    seen: dict[str, list[int]] = {}
    for line in log.read_text().splitlines():
        step, pid = line.split()
        seen.setdefault(step, []).append(int(pid))
    return seen


@legato.step
async def fleet_step(tag: str, i: int) -> int:
    with open(os.environ["LEGATO_TEST_LOG"], "a") as log:  # noqa: ASYNC230
        log.write(f"{tag}-{i} {os.getpid()}\n")
    await asyncio.sleep(STEP_SECONDS)
    return i


@legato.workflow(name="fleet_five")
async def five_steps(tag: str) -> list[int]:
    return [await fleet_step(tag, i) for i in range(1, 6)]


@legato.workflow(name="fleet_waiter")
async def waiter(tag: str) -> tuple[int, float]:
    """Waits for the signal ``go``; returns the pid that woke and when (wall clock)."""
    await fleet_step(tag, 1)
    await legato.wait_for_signal("go")
    return os.getpid(), time.time()  # not recorded: the run that finishes tells


@legato.step
async def pid_step(tag: str, i: int) -> int:
    """Like :func:`fleet_step`, returning the pid of the process whose body ran."""
    await fleet_step(tag, i)
    return os.getpid()


@legato.workflow(name="fleet_owned")
async def owned(tag: str) -> list[int]:
    return [await pid_step(tag, i) for i in range(1, 4)]


LIMITED = legato.Queue("fleet_limited", concurrency=2)  # found by --queue fleet_limited


@legato.step
async def timed_step(tag: str) -> None:
    """Sleeps, then appends ``"<tag> <start> <end>"`` (wall clock) to ``LEGATO_TEST_SPANS``."""
    began = time.time()
    await asyncio.sleep(STEP_SECONDS)
    with open(os.environ["LEGATO_TEST_SPANS"], "a") as spans:  # noqa: ASYNC230
        spans.write(f"{tag} {began} {time.time()}\n")


@legato.workflow(name="fleet_limited", queue=LIMITED)
async def limited(tag: str) -> str:
    await timed_step(tag)
    return tag


@legato.step
async def blocking_step(tag: str, seconds: float) -> int:
    """Blocks the event loop for ``seconds`` (the first time it runs only), like CPU-bound code."""
    log = Path(os.environ["LEGATO_TEST_LOG"])
    first = not runs(log)[f"{tag}-1"]
    await fleet_step(tag, 1)
    if first:
        time.sleep(seconds)  # noqa: ASYNC251 - the point: a step that stalls the loop
    return os.getpid()


@legato.workflow(name="fleet_blocker")
async def blocker(tag: str, seconds: float) -> int:
    return await blocking_step(tag, seconds)
