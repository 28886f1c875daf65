"""One in-process wake-up bus: every waiter in a Runtime watches a workflow id here.

Whatever may change what someone waits for — news from another process
(a signal, an event, a finish), a run in this process setting an event or
ending, a signal sent from here — wakes that workflow id's watchers, who
then look at the store again. Waiting on the bus is always paired with a
re-read, so a spurious wake-up costs a read and nothing more.

Example::

    news = bus.watch("wf-1")  # before reading what you wait for: nothing is lost
    try:
        while not finished(await store.get("wf-1")):
            await news.wait()
            news.clear()
    finally:
        bus.unwatch("wf-1", news)
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["WakeBus"]


class WakeBus:
    """Events by workflow id, set by :meth:`wake`."""

    def __init__(self) -> None:
        self._watchers: dict[str, list[asyncio.Event]] = {}

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
