"""Reading a workflow's stream from any process: ``handle.stream(key)``.

A reader loops "watch the bus, read from its offset, wait for a wake-up", as
the other client waits do (see ``_waiter``): a write's news (``"event"``,
sent in the write's transaction) wakes it within milliseconds in any process
on the store, and the safety-net poll covers news that was lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, final

from ...store import Store
from ..worker import SAFETY_POLL, WakeBus

__all__ = ["StreamReader"]

_BATCH = 1000  # values read per query
_FINISHED = ("succeeded", "failed", "cancelled")


@final
class StreamReader:
    """An async iterator over stream ``key`` of one workflow, live (``handle.stream``).

    It yields each value once, in order, from ``offset`` on, waiting for
    new ones, and ends when the stream is closed or the workflow has
    finished and every value written is read. ``offset`` is the offset of
    the next value: a reader that stops can start again there.

    Example::

        reader = handle.stream("tokens")
        async for token in reader:
            print(token, end="", flush=True)
        print(reader.offset, "tokens")
    """

    __slots__ = ("_bus", "_loads", "_store", "key", "offset", "workflow_id")

    def __init__(self, store: Store, bus: WakeBus, loads: Any, workflow_id: str, key: str,
                 offset: int) -> None:
        self._store = store
        self._bus = bus
        self._loads = loads
        self.workflow_id = workflow_id
        self.key = key
        self.offset = offset

    def __repr__(self) -> str:
        return f"<StreamReader {self.workflow_id!r} {self.key!r} at {self.offset}>"

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._values()

    async def _values(self) -> AsyncIterator[Any]:
        while True:
            rows, ended = await self._next_rows()
            for offset, value in rows:
                if value is None:  # the close marker
                    return
                self.offset = offset + 1
                yield self._loads(value)
            if ended:
                return

    async def _next_rows(self) -> tuple[list[tuple[int, bytes | None]], bool]:
        """The next values; waits while there are none. ``ended``: no more will come."""
        store, wid = self._store, self.workflow_id
        while True:
            news = self._bus.watch(wid)
            try:
                rows = await store.read_stream(wid, self.key, self.offset, _BATCH)
                if rows:
                    return rows, False
                record = await store.get(wid)
                if record is not None and record.status in _FINISHED:
                    # values committed before the finish were read above: no more come
                    rows = await store.read_stream(wid, self.key, self.offset, _BATCH)
                    return rows, len(rows) < _BATCH
                await self._bus.woken(news, SAFETY_POLL)
            finally:
                self._bus.unwatch(wid, news)

