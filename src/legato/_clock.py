"""Durable time: the wall clock, or a virtual one that tests can drive.

Durable time is what ``legato.sleep``, ``legato.now`` and timers inside
workflows read. Leases and heartbeats always use real time: the wall clock,
set to the store's clock when the store has one of its own (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from typing import Protocol, final

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """A source of durable time, in seconds since the Unix epoch."""

    def now(self) -> float:
        """The current time."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once :meth:`now` has reached ``deadline``."""
        ...


@final
class SystemClock:
    """The real wall clock (``time.time()``); the default.

    ``offset`` is added to this machine's clock: a runtime on PostgreSQL sets
    it to the database server's clock, so that workers on machines whose
    clocks disagree still agree on lease ends and timers.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)

    def __repr__(self) -> str:
        return f"SystemClock(offset={self.offset!r})" if self.offset else "SystemClock()"


@final
class VirtualClock:
    """Durable time that moves only when told to, or when nothing else can run.

    With ``autojump=True`` (the default) the clock jumps to the next timer as
    soon as the event loop has nothing else to do, so a workflow that sleeps
    seven days finishes at once, while the order of events stays as in real
    time. Work running in threads (sync steps) does not hold the clock back.
    With ``autojump=False`` time moves only by :meth:`advance`.

    Example::

        clock = legato.VirtualClock()
        async with legato.Runtime("test.db", clock=clock) as rt:
            await rt.run(weekly_report)      # its sleep("7d") returns at once
        assert clock.now() >= clock.start + 7 * 86400

    Args:
        start: the initial time in epoch seconds (default: real time now).
        autojump: jump to the next timer whenever the event loop is idle.
    """

    def __init__(self, start: float | None = None, *, autojump: bool = True) -> None:
        self.start = time.time() if start is None else float(start)
        self.autojump = autojump
        self._now = self.start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._jumper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r}, autojump={self.autojump})"

    def now(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (deadline, next(self._seq), fut))
        if self.autojump and (self._jumper is None or self._jumper.done()):
            # An empty context: the jumper belongs to no caller (not a workflow branch).
            self._jumper = asyncio.get_running_loop().create_task(
                self._autojump(), name="legato-virtual-clock", context=contextvars.Context()
            )
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and let the woken sleepers run.

        >>> await clock.advance(3600)   # an hour passes at once
        """
        if seconds < 0:
            raise ValueError(f"a clock can't go back: advance({seconds!r})")
        self._set(self._now + seconds)
        for _ in range(5):
            await asyncio.sleep(0)

    def _set(self, when: float) -> None:
        self._now = max(self._now, float(when))
        while self._timers and self._timers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._timers)
            if not fut.done():
                fut.set_result(None)

    def _next_deadline(self) -> float | None:
        while self._timers and self._timers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def _autojump(self) -> None:
        loop = asyncio.get_running_loop()
        while (deadline := self._next_deadline()) is not None:
            await _until_idle(loop)
            if self._next_deadline() == deadline:
                self._set(deadline)


async def _until_idle(loop: asyncio.AbstractEventLoop) -> None:
    """Return once the loop has had nothing ready to run for a few turns.

    CPython's loop keeps its ready callbacks in ``_ready``; on a loop without
    it (e.g. uvloop) fall back to a short real-time pause.
    """
    ready = getattr(loop, "_ready", None)
    if ready is None:
        await asyncio.sleep(0.001)
        return
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0)
        quiet = quiet + 1 if not ready else 0
