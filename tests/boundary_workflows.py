"""A workflow that uses every kind of durable call, for crash-at-every-boundary tests.

It ends by continuing as a new run, which runs one more step.

Each step has its own name and notes each real run in ``$LEGATO_TEST_LOG``,
so a test can tell which steps ran again after a crash.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import legato


def _effect(name: str) -> legato.step:  # type: ignore[valid-type]
    async def body() -> str:
        # a seeded jitter reorders concurrent branches from run to run
        await asyncio.sleep(random.random() * 0.002)
        with Path(os.environ["LEGATO_TEST_LOG"]).open("a") as log:  # noqa: ASYNC230 - tiny
            log.write(f"{name}\n")
        return name

    return legato.step(name=name)(body)


STEPS = {name: _effect(name) for name in (
    "first", "g1", "g2", "g3", "r1", "child", "book", "unbook", "last", "next_run")}


class NoCars(Exception):
    pass


@legato.step
async def rent_car() -> None:
    raise NoCars("no cars left")


@legato.workflow(name="boundary_sub")
async def sub() -> str:
    return await STEPS["child"]()


@legato.workflow(name="boundary_trip")
async def trip(carried: dict[str, Any] | None = None) -> dict[str, Any]:
    if carried is not None:  # the second run, after continue-as-new
        return {**carried, "next_run": await STEPS["next_run"]()}
    first = await STEPS["first"]()
    gathered = await asyncio.gather(STEPS["g1"](), STEPS["g2"](), STEPS["g3"]())
    raced = await legato.race(STEPS["r1"](), legato.sleep(3600, result="timer"))
    signal = await legato.wait_for_signal("go")
    child = await sub()
    await legato.sleep(0.01)
    try:
        async with legato.saga() as saga:
            await STEPS["book"]()
            saga.compensate(STEPS["unbook"])
            await rent_car()
    except NoCars:
        pass
    legato.continue_as_new({"first": first, "gathered": gathered, "raced": raced,
                            "signal": signal, "child": child, "last": await STEPS["last"]()})
