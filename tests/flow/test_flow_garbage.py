"""The primitives leave no reference cycles behind, whether their branches win, lose or fail.

Cyclic garbage is freed only by the garbage collector, which then walks
every live object: with thousands of branches alive (a big fan-out) that
walk is most of the time spent. Everything a primitive made must go by
reference counting alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from legato.flow import parallel, race, select, spawn, timeout, vote


async def _one() -> int:
    return 1


async def _boom() -> int:
    raise ValueError("boom")


async def _blocked(event: asyncio.Event) -> int:
    await event.wait()
    return 0


def _cases(event: asyncio.Event) -> dict[str, Callable[[], Awaitable[Any]]]:
    def blocked(n: int) -> list[Any]:
        return [_blocked(event) for _ in range(n)]

    return {
        "parallel": lambda: parallel([_one() for _ in range(20)]),
        "parallel, one fails": lambda: parallel([_boom(), *blocked(19)]),
        "parallel, limit, one fails": lambda: parallel([_boom(), *blocked(19)], limit=5),
        "parallel, return_exceptions": lambda: parallel(
            [_boom() for _ in range(20)], return_exceptions=True),
        "race, losers cancelled": lambda: race(_one(), *blocked(19)),
        "race, all fail": lambda: race(*[_boom() for _ in range(20)]),
        "vote": lambda: vote(*[_one() for _ in range(20)]),
        "vote, all fail": lambda: vote(*[_boom() for _ in range(20)]),
        "select": lambda: select(a=_one(), **{f"b{i}": _blocked(event) for i in range(19)}),
        "select, the first fails": lambda: select(
            a=_boom(), **{f"b{i}": _blocked(event) for i in range(19)}),
        "timeout fires": lambda: timeout(0.001, _blocked(event), default=0),
        "timeout, the work fails": lambda: timeout(1, _boom()),
        "spawn of a failing parallel": lambda: spawn(parallel([_boom(), *blocked(19)])),
    }


@pytest.mark.parametrize("case", list(_cases(asyncio.Event())))
async def test_no_reference_cycles(case: str) -> None:
    event = asyncio.Event()
    make = _cases(event)[case]
    with contextlib.suppress(Exception):
        await make()  # warm-up: first-call caches are not garbage
    await asyncio.sleep(0.01)
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            with contextlib.suppress(Exception):
                await make()
        await asyncio.sleep(0.01)  # cancelled losers finish
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0, f"{case}: {found} objects in reference cycles"

