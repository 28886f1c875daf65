"""The runs a worker claimed that have not started yet: it claims again once none are left.

A worker claims again only as fast as it starts what it took. With several
workers on one backlog, the first one up would otherwise claim up to its
concurrency before the others' first claim, and a process short of CPU
would hold work that idle ones could run (issue 19: the smallest worker's
share of a backlog went from 0.00-0.26 of an even one to 0.82-1.00).

Example::

    starting = Starting()
    starting.add("wf-1")          # claimed, launched
    ...
    starting.started("wf-1")      # its history loaded (or its task ended)
    await starting.none_left()    # returns at once now
"""

from __future__ import annotations

import asyncio

__all__ = ["Starting"]


class Starting:
    """Ids of claimed runs not started yet, and a wait until there are none."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._none_left = asyncio.Event()
        self._none_left.set()

    def add(self, workflow_id: str) -> None:
        self._ids.add(workflow_id)
        self._none_left.clear()

    def started(self, workflow_id: str) -> None:
        """``workflow_id`` started, or will not: its run loaded, failed to, or ended."""
        if workflow_id in self._ids:  # most runs were never in it: created here, not claimed
            self._ids.discard(workflow_id)
            if not self._ids:
                self._none_left.set()

    async def none_left(self) -> None:
        await self._none_left.wait()
