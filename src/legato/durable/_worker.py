"""The in-process worker: claims workflows, holds their leases, runs them.

A worker owns each workflow it runs through a lease (an expiry time in the
store) that a heartbeat renews. When a process dies its leases lapse, and any
worker on the same store takes those workflows over and replays them from
their last checkpoint. A live worker's workflows are never taken: its
heartbeat keeps their leases in the future.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from typing import Any

from .._errors import LegatoError
from ..store import WorkflowRecord
from ._execution import Engine, execute
from ._workflow import Workflow, lookup, registered_names

__all__ = ["Worker", "new_owner_id"]

log = logging.getLogger("legato.worker")

_POLL = 0.5  # seconds between looks for work from other processes (SQLite has no NOTIFY)


def new_owner_id() -> str:
    """A worker id that names the machine and process, for people reading the store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs workflows for one Runtime, up to ``concurrency`` at a time."""

    def __init__(self, engine: Engine, *, concurrency: int, lease: float) -> None:
        self.engine = engine
        self.concurrency = concurrency
        self.lease = lease
        self.tasks: dict[str, asyncio.Task[str | None]] = {}
        self._reserved = 0
        self._wakeup = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="legato-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="legato-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop taking work, stop running workflows, give their leases back."""
        running = list(self.tasks.items())
        for task in [*self._loops, *(t for _, t in running)]:
            task.cancel()
        await asyncio.gather(*self._loops, *(t for _, t in running), return_exceptions=True)
        await self.engine.store.release(self.engine.owner, [wid for wid, _ in running])

    def lease_until(self) -> float:
        return time.time() + self.lease

    def reserve(self) -> bool:
        """Hold a slot for a workflow about to be created here; False when full."""
        if len(self.tasks) + self._reserved >= self.concurrency:
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        self._reserved -= 1

    def launch(self, wf: Workflow[Any, Any], record: WorkflowRecord) -> None:
        task = asyncio.create_task(self._run(wf, record), name=f"legato-workflow:{record.id}")
        self.tasks[record.id] = task

    def poke(self) -> None:
        """Look for work now (a workflow was stored or a slot freed)."""
        self._wakeup.set()

    async def _run(self, wf: Workflow[Any, Any], record: WorkflowRecord) -> str | None:
        try:
            return await execute(self.engine, wf, record)
        except LegatoError:
            log.exception(
                "workflow %r stopped on a store error; it resumes after its lease", record.id)
            return None
        finally:
            del self.tasks[record.id]
            self.poke()

    async def _claim_loop(self) -> None:
        store = self.engine.store
        while True:
            self._wakeup.clear()
            free = self.concurrency - len(self.tasks) - self._reserved
            if free > 0:
                try:
                    claimed = await store.claim(
                        self.engine.owner, self.lease_until(), time.time(), min(free, 100),
                        registered_names())
                except LegatoError:
                    log.exception("claiming workflows failed; retrying")
                    claimed = []
                for record in claimed:
                    wf = lookup(record.name)
                    if wf is not None:
                        self.launch(wf, record)
                if len(claimed) == min(free, 100):
                    continue  # there may be more
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(await self._next_look()):
                    await self._wakeup.wait()

    async def _next_look(self) -> float:
        """Seconds until the next lease of another worker lapses, at most the poll interval."""
        expiry = await self.engine.store.next_lease_expiry()
        if expiry is None:
            return _POLL
        return max(0.01, min(_POLL, expiry - time.time() + 0.01))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                await self.engine.store.heartbeat(self.engine.owner, self.lease_until())
            except LegatoError:
                log.exception("renewing leases failed; retrying")
