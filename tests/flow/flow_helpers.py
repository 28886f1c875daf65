"""Small helpers shared by the primitive tests."""

from __future__ import annotations

import asyncio


def no_tasks_left() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def value(x: object) -> object:
    await asyncio.sleep(0)
    return x
