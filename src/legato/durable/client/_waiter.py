"""How a client waits: for a workflow's end, for an event it publishes.

Each wait is a loop of "watch the bus, read the store, wait for a wake-up":
the watch comes before the read, so news arriving in between still wakes
it, and the safety-net poll catches news that was lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..._errors import WorkflowNotFound
from ..._serde import Serializer
from ...store import Store, WorkflowRecord
from ..worker import SAFETY_POLL, WakeBus, Worker
from ._handle import Status, WorkerInfo

__all__ = ["Waiter"]


class Waiter:
    """Waits on a store's workflows, woken through the runtime's bus."""

    def __init__(self, store: Store, serializer: Serializer, bus: WakeBus,
                 worker: Worker | None,
                 workers: Callable[[], Awaitable[list[WorkerInfo]]]) -> None:
        self.store = store
        self.serializer = serializer
        self.bus = bus
        self.worker = worker
        self.workers = workers

    async def finished(self, workflow_id: str) -> WorkflowRecord:
        """The workflow's row once it has finished."""
        while True:
            news = self.bus.watch(workflow_id)
            try:
                record = await self._read_finished(workflow_id)
                if record is not None:
                    return record
                await self.bus.woken(news, SAFETY_POLL)
            finally:
                self.bus.unwatch(workflow_id, news)

    async def _read_finished(self, workflow_id: str) -> WorkflowRecord | None:
        """The record once finished; ``None`` when not finished and no local run goes on.

        A run in this process is waited for before the read: the row is read
        once, after its end, instead of once before and once after.
        """
        while True:
            task = self.worker.tasks.get(workflow_id) if self.worker else None
            if task is not None:
                assert self.worker is not None
                with self.worker.awaiting(workflow_id) as ended:
                    await asyncio.wait([task])  # doesn't cancel the workflow if we are
                    record = ended()
                if record is not None:  # it finished here: the row its finish stored
                    return record
            record = await self.store.get(workflow_id)
            if record is None:
                raise WorkflowNotFound(workflow_id)
            if Status(record.status).finished:
                return record
            if not self.worker or workflow_id not in self.worker.tasks:
                return None

    async def event(self, workflow_id: str, key: str, timeout: float | None) -> Any:
        """The value of event ``key``; ``None`` once the workflow ended without it.

        A workflow id not stored yet is waited for, as an event not set yet
        (its "event" news wakes this wait once it exists and publishes).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            news = self.bus.watch(workflow_id)
            try:
                # the reads are outside the deadline: timeout=0 still reads once
                found, value = await self.store.get_event(workflow_id, key)
                if found:
                    return self.serializer.loads(value) if value is not None else None
                record = await self.store.get(workflow_id)
                if record is not None and Status(record.status).finished:
                    return None
                # an id not (yet) stored is waited for like an event not yet set
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError
                async with asyncio.timeout_at(deadline):
                    await self.bus.woken(news, SAFETY_POLL)
            finally:
                self.bus.unwatch(workflow_id, news)

    async def unserved(self, workflow_id: str) -> str | None:
        """Why a pending workflow is not started, if it is that no live worker knows it."""
        record = await self.store.get(workflow_id)
        if record is None or record.status != "pending":
            return None
        alive = [w for w in await self.workers() if w.alive]
        if any(record.name in w.workflows for w in alive):
            return None
        serving = "; ".join(f"{w.id} serves {', '.join(w.workflows) or 'nothing'}"
                            for w in alive) or "no worker is serving it"
        return (f"workflow {workflow_id!r} is still pending: no worker serving this store "
                f"knows workflow {record.name!r} ({serving}). Start a worker that imports "
                f"its module: legato worker MODULE --store {self.store.url}")

