"""News between processes sharing one SQLite file: PostgreSQL's NOTIFY, as a table.

SQLite has no way to wake another process. So every write that makes work
claimable or that a waiter cares about also inserts a row into ``news``, in
the same transaction: ``(kind, workflow_id)`` with the kinds of
``PostgresStore.wait_for_news``. Each store reads the new rows every few
milliseconds — an indexed range read of the rows since its last
look, a few microseconds — so a worker process starts a workflow another
process enqueued, and sees its signals and cancellations, within a tick
instead of a poll interval. Rows are pruned once every reader has had ample
time to see them; a reader that slept through the pruning catches up by
polling, as with lost NOTIFYs.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["TICK", "NewsReader", "announce"]

TICK: Final = 0.01  # seconds between looks at the news table
_KEEP: Final = 30.0  # seconds a row stays before any store may prune it
_PRUNE_EVERY: Final = 5.0  # seconds between one store's prunes
_NEWS_KEPT: Final = 10_000  # a burst beyond this is reported as one unnamed "pending"


def announce(conn: sqlite3.Connection, kind: str, workflow_id: str) -> None:
    """Record news for every process on the file, inside the caller's write transaction."""
    conn.execute("INSERT INTO news (kind, workflow_id) VALUES (?, ?)", (kind, workflow_id))


class NewsReader:
    """What was announced since the last look (see :meth:`wait`)."""

    def __init__(self, read: Callable[[str, tuple[Any, ...]], list[Any]],
                 prune: Callable[[int], Any]) -> None:
        self._read = read
        self._prune = prune
        self._last: int | None = None
        self._seen: collections.deque[tuple[float, int]] = collections.deque()
        self._pruned_at = time.monotonic()

    async def wait(self, timeout: float) -> list[tuple[str, str]]:
        """News, waiting up to ``timeout`` s for some; ``[]`` when none came."""
        deadline = time.monotonic() + timeout
        while True:
            news = self._look()
            if news or time.monotonic() >= deadline:
                return news
            await asyncio.sleep(TICK)

    def _look(self) -> list[tuple[str, str]]:
        if self._last is None:  # news from before we started is not ours to act on
            self._last = self._read("SELECT coalesce(max(seq), 0) FROM news", ())[0][0]
            self._mark()
            return []
        rows = self._read("SELECT seq, kind, workflow_id FROM news WHERE seq > ? ORDER BY seq",
                          (self._last,))
        if not rows:
            return []
        self._last = rows[-1][0]
        self._mark()
        if len(rows) > _NEWS_KEPT:
            return [("pending", ""), ("finish", "")]
        return [(kind, wid) for _, kind, wid in rows]

    def _mark(self) -> None:
        """Remember where the news stood when, and prune what every reader has seen."""
        now = time.monotonic()
        assert self._last is not None
        self._seen.append((now, self._last))
        if now - self._pruned_at < _PRUNE_EVERY:
            return
        upto = None
        while self._seen and self._seen[0][0] < now - _KEEP:
            upto = self._seen.popleft()[1]
        if upto is not None:
            self._pruned_at = now
            self._prune(upto)
