"""One in-process wake-up bus: every waiter in a Runtime watches a workflow id here.

Whatever may change what someone waits for — news from another process
(a signal, an event, a finish), a run in this process setting an event or
ending, a signal sent from here — wakes that workflow id's watchers, who
then look at the store again. Waiting on the bus is always paired with a
re-read, so a spurious wake-up costs a read and nothing more.

Finishes and events elsewhere are news only for a process that follows
them (see ``Store.follow_ends``): a wait for one waits with :meth:`WakeBus.woken`,
which follows them meanwhile.

Example::

    news = bus.watch("wf-1")  # before reading what you wait for: nothing is lost
    try:
        while not finished(await store.get("wf-1")):
            await bus.woken(news, timeout=5.0)  # hears finishes meanwhile
            news.clear()
    finally:
        bus.unwatch("wf-1", news)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ..._errors import LegatoError

__all__ = ["FOLLOW_LINGER", "WakeBus"]

log = logging.getLogger("legato.news")

# seconds news of ends is still followed after the last wait for it: a client
# awaiting one result after another pays the LISTEN once, not per result
FOLLOW_LINGER = 10.0


class WakeBus:
    """Events by workflow id, set by :meth:`wake`."""

    def __init__(self, *, linger: float = FOLLOW_LINGER) -> None:
        self._watchers: dict[str, list[asyncio.Event]] = {}
        self.linger = linger
        # set by the news relay: makes the store send this process finishes and events
        self.follow: Callable[[bool], Awaitable[None]] | None = None
        self._hearing = 0  # waits holding hearing_ends()
        self._following = False
        self._switch = asyncio.Lock()  # one follow / unfollow at a time
        self._linger: asyncio.TimerHandle | None = None
        self._unfollowing: asyncio.Task[bool] | None = None

    @property
    def following(self) -> bool:
        """Whether news of finishes and events reaches this process now."""
        return self._following

    @contextlib.asynccontextmanager
    async def hearing_ends(self) -> AsyncIterator[bool]:
        """While inside, news of finishes and events reaches this process.

        Yields whether following started just now: a finish may have come
        between the caller's read and this, unheard, so it reads again
        instead of waiting.
        """
        self._hearing += 1
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        try:
            started = await self._follow(True) if not self._following else False
            yield started
        finally:
            self._hearing -= 1
            if not self._hearing and self._following and self.follow is not None:
                # in a context of its own: not a branch of a workflow that waited here
                self._linger = asyncio.get_running_loop().call_later(
                    self.linger, self._unfollow_later, context=contextvars.Context())

    async def woken(self, news: asyncio.Event, timeout: float) -> None:
        """Until ``news`` is set (hearing finishes and events meanwhile), or ``timeout``.

        Returns at once when hearing them started just now: the caller reads
        again, as after a wake-up, what it may have missed.
        """
        async with self.hearing_ends() as started:
            if not started:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await news.wait()

    def close(self) -> None:
        """Stop the pending unfollow, if any (the store is closing)."""
        if self._linger is not None:
            self._linger.cancel()
        if self._unfollowing is not None:
            self._unfollowing.cancel()

    async def _follow(self, on: bool) -> bool:
        """Follow (or stop following) news of ends; whether that changed anything."""
        async with self._switch:
            if self.follow is None or self._following == on or (not on and self._hearing):
                return False
            try:
                await self.follow(on)
            except LegatoError:  # news is best effort: the safety poll still looks
                log.warning("could not %s news of finishes; waits poll instead",
                            "follow" if on else "stop following", exc_info=True)
            self._following = on
            return True

    def _unfollow_later(self) -> None:
        self._linger = None
        self._unfollowing = asyncio.get_running_loop().create_task(self._follow(False))

    def watch(self, workflow_id: str) -> asyncio.Event:
        """An event set at the next wake-up of ``workflow_id``; register it before reading."""
        event = asyncio.Event()
        self._watchers.setdefault(workflow_id, []).append(event)
        return event

    def unwatch(self, workflow_id: str, event: asyncio.Event) -> None:
        events = self._watchers.get(workflow_id, [])
        with contextlib.suppress(ValueError):
            events.remove(event)
        if not events:
            self._watchers.pop(workflow_id, None)

    def wake(self, workflow_id: str) -> None:
        """Set every watcher of ``workflow_id``."""
        for event in self._watchers.get(workflow_id, ()):
            event.set()

    def wake_all(self) -> None:
        for events in self._watchers.values():
            for event in events:
                event.set()
