"""Workflows shared by the crash tests and the worker process they kill.

Every step appends a line to the log file named by ``LEGATO_TEST_LOG`` when it
runs, so the test can count how often each step's body really ran. A worker
started with ``LEGATO_TEST_HANG_AFTER=N`` lets N step bodies run, then hangs
every later one: the test kills it there.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path

import legato

_started = 0


def ran(log: Path) -> Counter[str]:
    """How often each step body ran, from the log (for the tests)."""
    return Counter(log.read_text().split())


async def _run_body(name: str, delay: float = 0.0) -> None:
    global _started
    with open(os.environ["LEGATO_TEST_LOG"], "a") as log:  # noqa: ASYNC230
        log.write(name + "\n")
    print(name, flush=True)  # the killing test waits on this line
    _started += 1
    hang_after = os.environ.get("LEGATO_TEST_HANG_AFTER")
    if hang_after is not None and _started > int(hang_after):
        await asyncio.Event().wait()  # until SIGKILL
    if delay:
        await asyncio.sleep(delay)


@legato.step
async def numbered(i: int) -> int:
    await _run_body(f"step-{i}")
    return i * i


@legato.workflow(name="ten_steps")
async def ten_steps() -> list[int]:
    return [await numbered(i) for i in range(1, 11)]


@legato.step
async def branch_step(branch: str, i: int) -> str:
    await _run_body(f"{branch}{i}", delay=random.uniform(0, 0.03))
    return f"{branch}{i}"


async def _branch(branch: str) -> list[str]:
    return [await branch_step(branch, i) for i in range(1, 4)]


@legato.workflow(name="three_branches")
async def three_branches() -> list[list[str]]:
    return list(await asyncio.gather(_branch("a"), _branch("b"), _branch("c")))


@legato.step
async def named(name: str) -> str:
    await _run_body(name)
    return name


@legato.workflow(name="evolving")
async def evolving() -> list[str]:
    """Version 1; the non-determinism test replaces it with a different body."""
    return [await named("first"), await named("second"), await named("third")]


@legato.workflow(name="sleeper")
async def sleeper() -> str:
    await named("before")
    await legato.sleep(1.0)
    return await named("after")


@legato.workflow(name="signalled")
async def signalled() -> str:
    await named("asked")
    answer = await legato.wait_for_signal("go")
    return await named(f"got-{answer}")


class CarUnavailable(Exception):
    pass


@legato.step
async def book_car() -> str:
    await _run_body("car")
    raise CarUnavailable("no cars left")


@legato.workflow(name="trip_saga")
async def trip_saga() -> str:
    async with legato.saga() as saga:
        await named("flight")
        saga.compensate(named, "cancel-flight")
        await named("hotel")
        saga.compensate(named, "cancel-hotel")
        return await book_car()


@legato.step
async def contender(name: str) -> str:
    slow = os.environ.get("LEGATO_TEST_SLOW", "")
    await _run_body(name, delay=30.0 if name == slow else 0.0)
    return name


@legato.workflow(name="racer")
async def racer() -> list[str]:
    winner = await legato.race(contender("tortoise"), contender("hare"))
    return [winner, await named("after")]
