"""Waiting on state that lives in the store, where no in-process event exists."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    """Poll ``check`` every 5 ms until it is true; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / 0.005)):
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition not met within {timeout} s")


def status_is(handle: object, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await handle.status() == status  # type: ignore[attr-defined, no-any-return]

    return check
