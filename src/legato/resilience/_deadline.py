"""``within``: await something for a while at most, saying whose time ran out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")


async def within(seconds: float, call: Awaitable[T], expired: Callable[[], str]) -> T:
    """``await call``, cancelled after ``seconds``; then ``TimeoutError(expired())``.

    A ``TimeoutError`` raised by ``call`` itself passes through unchanged, so a
    caller can tell its own deadline from one deeper down. ``expired`` is
    called only when the time ran out (it may describe what was running then).

    >>> await within(30, fetch(url), lambda: f"fetching {url} took over 30 s")
    """
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await call
    except TimeoutError:
        if not deadline.expired():
            raise  # the call's own TimeoutError
        raise TimeoutError(expired()) from None
