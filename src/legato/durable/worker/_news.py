"""News from other processes, passed to whoever waits for it.

A store that has ``wait_for_news(timeout)`` (PostgreSQL by ``LISTEN/NOTIFY``,
SQLite by its news table) tells every process on the database when a
workflow is enqueued, woken, signalled, cancelled or finished. One
:class:`NewsRelay` per Runtime reads that news and passes it on: the worker
claims at once instead of on its next poll, a run in memory sees its signal
or cancellation, and ``handle.result()`` returns as soon as the workflow
finishes.

Example::

    relay = NewsRelay(store.wait_for_news, bus, worker, follow=store.follow_ends)
    relay.start()  # news about "wf-1" from any process wakes bus.watch("wf-1")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..._errors import LegatoError
from ._bus import WakeBus

__all__ = ["SAFETY_POLL", "NewsRelay"]

log = logging.getLogger("legato.news")

SAFETY_POLL = 5.0  # seconds: with news, polling only catches what news missed


class _Target(Protocol):
    """What the relay tells a worker (:class:`~legato.durable.worker.Worker`)."""

    def poke(self) -> None: ...
    def retime(self) -> None: ...
    def caps_running(self) -> bool: ...
    def notify(self, workflow_id: str) -> None: ...
    def cancel_local(self, workflow_id: str) -> bool: ...


class NewsRelay:
    """Reads a store's news in a background task and passes each item on to the bus."""

    def __init__(self, wait: Callable[[float], Awaitable[list[tuple[str, str]]]],
                 bus: WakeBus, worker: _Target | None,
                 follow: Callable[[bool], Awaitable[None]] | None = None) -> None:
        self._wait = wait
        self._bus = bus
        self._follow = follow  # the store's follow_ends
        self._worker = worker
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._bus.follow = self._follow
        self._task = asyncio.create_task(self._loop(), name="legato-news")

    async def stop(self) -> None:
        self._bus.follow = None
        self._bus.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                news = await self._wait(SAFETY_POLL)
            except LegatoError:
                log.exception("listening for news failed; retrying")
                await asyncio.sleep(SAFETY_POLL)
                continue
            self.dispatch(news)

    def dispatch(self, news: list[tuple[str, str]]) -> None:
        """Pass on one batch of ``(kind, workflow_id)`` news (see ``wait_for_news``)."""
        poke = False
        for kind, workflow_id in news:
            if kind in ("finish", "event"):
                if workflow_id:
                    self._bus.wake(workflow_id)
                else:  # an unnamed finish: everyone looks
                    self._bus.wake_all()
                # a queue slot may have freed; without capped queues, a finish elsewhere
                # frees nothing here (a waiting parent gets "wake" news of its own)
                poke = poke or (kind == "finish" and self._worker is not None
                                and self._worker.caps_running())
            elif self._worker is None:
                continue
            elif kind == "signal":
                self._worker.notify(workflow_id)
            elif kind == "cancel":
                if not self._worker.cancel_local(workflow_id):
                    poke = True
            elif kind == "timer":  # due later: when, is one read
                self._worker.retime()
            else:  # pending, wake: claimable now
                poke = True
        if poke and self._worker is not None:
            self._worker.poke()
