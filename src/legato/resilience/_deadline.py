"""``within``: await something for a while at most, saying whose time ran out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["within"]

T = TypeVar("T")


_GRACE = 1.0  # seconds a cancelled call gets to clean up before the wait ends anyway


async def within(seconds: float, call: Awaitable[T], expired: Callable[[], str]) -> T:
    """``await call``, cancelled after ``seconds``; then ``TimeoutError(expired())``.

    The deadline holds even for code that ignores cancellation: ``call`` runs
    in its own task, and once the time is up the wait ends (after a short
    grace for cleanup) whatever the task does; a value it returns late is
    dropped. A ``TimeoutError`` raised by ``call`` itself passes through
    unchanged, so a caller can tell its own deadline from one deeper down.
    ``expired`` is called only when the time ran out.

    >>> await within(30, fetch(url), lambda: f"fetching {url} took over 30 s")
    """
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait((task,), timeout=seconds)
    except asyncio.CancelledError:
        await _stop(task)
        raise
    if done:
        return task.result()
    await _stop(task)
    raise TimeoutError(expired())


async def _stop(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and give it a moment to unwind; never wait longer."""
    task.cancel()
    try:
        await asyncio.wait((task,), timeout=_GRACE)
    finally:
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    # nothing awaits it any more: no "exception was never retrieved" warning
    if not task.cancelled():
        task.exception()
