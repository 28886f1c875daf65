"""``sleep``: asyncio's sleep outside workflows, a durable timer inside one."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, overload

from legato._duration import Duration, to_seconds

from ._hooks import RECORDER

__all__ = ["sleep"]

T = TypeVar("T")


@overload
async def sleep(duration: Duration) -> None: ...
@overload
async def sleep(duration: Duration, result: T) -> T: ...
async def sleep(duration: Duration, result: Any = None) -> Any:
    """Wait ``duration``, then return ``result``.

    Outside a workflow this is :func:`asyncio.sleep`. Inside one it is a
    durable timer: the wake-up time is recorded, a replay waits only what is
    left, and a long sleep lets the runtime unload the workflow. ``result``
    makes Lumen's race-with-timeout read naturally.

    Example::

        await legato.sleep("1h30m")
        page = await legato.race(fetch(url), legato.sleep(5, result=None))

    Args:
        duration: seconds, a ``timedelta``, or a string like ``"250ms"``, ``"1h30m"``.
        result: what to return when the time is up.

    Raises:
        ValueError: a negative duration or a string that isn't one.
        TypeError: a duration of another type.
    """
    seconds = to_seconds(duration)
    recorder = RECORDER.get()
    if recorder is None:
        await asyncio.sleep(seconds)
    else:
        await recorder.sleep(seconds)
    return result
