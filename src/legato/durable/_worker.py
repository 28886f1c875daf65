"""The in-process worker: claims workflows, holds their leases, runs them.

A worker owns each workflow it runs through a lease (an expiry time in the
store) that a heartbeat renews. When a process dies its leases lapse, and any
worker on the same store takes those workflows over and replays them from
their last checkpoint. A live worker's workflows are never taken: its
heartbeat keeps their leases in the future. Waiting workflows hold no task:
the worker claims them again when their wake-up time comes or news arrives.
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
from ..store import NewWorkflow, QueueLimits, WorkflowRecord
from ._context import Aborted, Run, detached
from ._execution import Engine, execute, load_run
from ._news import SAFETY_POLL
from ._workflow import Workflow, lookup, registered_names

__all__ = ["Worker", "new_owner_id"]

log = logging.getLogger("legato.worker")

_BATCH = 100
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0  # seconds between attempts of a run after store errors


def new_owner_id() -> str:
    """A worker id that names the machine and process, for people reading the store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs workflows for one Runtime, up to ``concurrency`` at a time."""

    def __init__(self, engine: Engine, *, concurrency: int, lease: float) -> None:
        self.engine = engine
        self.queues: dict[str, QueueLimits] = {}  # the queues whose workflows it runs
        self.concurrency = concurrency
        self.lease = lease
        self.poll = SAFETY_POLL  # the store's news wakes it; polling catches lost news
        self.tasks: dict[str, asyncio.Task[str | None]] = {}
        self.runs: dict[str, Run] = {}
        self.event_waiters: dict[str, asyncio.Event] = {}
        self._reserved = 0
        self._claimed_at: float | None = None  # durable time of the last claim
        self._wakeup = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="legato-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="legato-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop taking work, stop running workflows, give their leases back.

        A run unwinds as when it is unloaded: ``finally`` blocks run, nothing
        more is recorded, sagas don't compensate; another worker resumes it.
        """
        running = list(self.tasks.items())
        for loop in self._loops:
            loop.cancel()
        for workflow_id, task in running:
            run = self.runs.get(workflow_id)
            if run is not None:
                run.stop()
            task.cancel()  # also between attempts, where no body runs
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
        # detached: a child launched from its parent's code is no branch of the parent
        task = detached(self._run(wf, record), name=f"legato-workflow:{record.id}")
        self.tasks[record.id] = task

    def poke(self) -> None:
        """Look for work now (a workflow was stored, woken, or a slot freed)."""
        self._wakeup.set()

    # -- news for runs in this process ---------------------------------------------

    def signalled(self, workflow_id: str) -> None:
        self.notify(workflow_id)

    def notify(self, workflow_id: str) -> None:
        """Something a workflow may wait for arrived (a signal, a cancellation)."""
        run = self.runs.get(workflow_id)
        if run is not None:
            run.news.set()
        else:
            self.poke()  # it may be waiting in the store

    def cancel_local(self, workflow_id: str) -> bool:
        run = self.runs.get(workflow_id)
        if run is None:
            return False
        run.request_cancel("cancelled")
        return True

    # -- Host (what runs ask of their worker) ----------------------------------------

    async def start_child(
        self, wf: Workflow[Any, Any], child_id: str, data: bytes, parent: Run
    ) -> WorkflowRecord | None:
        here = self.reserve()
        try:
            existing = await self.engine.store.create(NewWorkflow(
                child_id, wf.name, data, self.engine.owner if here else None,
                self.lease_until() if here else 0.0, parent_id=parent.id,
                deadline=_deadline(self.engine, wf.timeout)))
            if existing is None:
                if here:
                    record = await self.engine.store.get(child_id)
                    assert record is not None
                    self.launch(wf, record)
                else:
                    self.poke()
        finally:
            if here:  # held until the launch: a claim meanwhile must not take the slot
                self.unreserve()
        return existing

    def cancelled(self, workflow_id: str) -> None:
        if not self.cancel_local(workflow_id):
            self.notify(workflow_id)

    def local_task(self, workflow_id: str) -> asyncio.Task[Any] | None:
        return self.tasks.get(workflow_id)

    def event_set(self, workflow_id: str) -> None:
        waiter = self.event_waiters.get(workflow_id)
        if waiter is not None:
            waiter.set()

    # -- loops -------------------------------------------------------------------------

    async def _run(self, wf: Workflow[Any, Any], record: WorkflowRecord) -> str | None:
        try:
            status = await self._attempts(wf, record)
        finally:
            self.runs.pop(record.id, None)
            del self.tasks[record.id]
            self.poke()
        if status is not None and status != "waiting":
            self.event_set(record.id)  # readers of events stop waiting on a finished run
        return status

    async def _attempts(self, wf: Workflow[Any, Any], record: WorkflowRecord) -> str | None:
        """Run ``record`` until it ends; after a store error, again from its checkpoint."""
        backoff = _RETRY_FIRST
        while True:
            run: Run | None = None
            try:
                run = await load_run(self.engine, record, self)
                self.runs[record.id] = run
                status = await execute(self.engine, wf, record, run)
            except LegatoError:
                log.exception("workflow %r stopped on a store error; retrying in %.1f s",
                              record.id, backoff)
            else:
                if not isinstance(run.unwinding, Aborted):
                    return status
            await asyncio.sleep(backoff)  # the lease is still ours: no one else takes it
            backoff = min(backoff * 2, _RETRY_MAX)

    async def _claim_loop(self) -> None:
        backoff = _RETRY_FIRST
        while True:
            self._wakeup.clear()
            try:
                free = min(self.concurrency - len(self.tasks) - self._reserved, _BATCH)
                if free > 0 and len(await self._claim(free)) == free:
                    continue  # there may be more
                await self._sleep_until_due()
            except LegatoError:
                # an outage must not end the loop: the worker would never claim again
                log.exception("the worker could not reach the store; retrying in %.1f s",
                              backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_MAX)
            else:
                backoff = _RETRY_FIRST

    async def _claim(self, limit: int) -> list[WorkflowRecord]:
        clock_now = self.engine.clock.now()
        self._reserved += limit  # a start meanwhile must not take the slots being claimed
        try:
            claimed = await self.engine.store.claim(
                self.engine.owner, self.lease_until(), time.time(), clock_now,
                limit, registered_names(), list(self.queues.values()))
        finally:
            self._reserved -= limit
        self._claimed_at = clock_now
        for record in claimed:
            wf = lookup(record.name)
            # a row whose lease lapsed under our own running task (a stalled loop, a
            # slow insert) is claimed back, never started a second time
            if wf is not None and record.id not in self.tasks:
                self.launch(wf, record)
        return claimed

    async def _sleep_until_due(self) -> None:
        """Until poked, a waiting workflow's wake-up time, a lease lapses, or a poll tick."""
        store = self.engine.store
        expiry = await store.next_lease_expiry()
        poll = self.poll
        # A lease that lapsed over a second ago and is still unclaimed belongs to code
        # this worker lacks: retrying for it would spin, so it no longer shortens the wait.
        until = None if expiry is None else expiry - time.time()
        timeout = poll if until is None or until < -1.0 else max(0.01, min(poll, until + 0.01))
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
        # times up to the last claim were claimable then: taken, or blocked until a slot
        # frees (which pokes); waiting on them would spin
        wake_at = await store.next_wake(self._claimed_at, list(self.queues.values()))
        if wake_at is not None:
            waits.append(asyncio.ensure_future(self.engine.clock.sleep_until(wake_at)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                cancelled = await self.engine.store.heartbeat(
                    self.engine.owner, self.lease_until())
            except LegatoError:
                log.exception("renewing leases failed; retrying")
                continue
            for workflow_id in cancelled:  # asked for by another process
                with contextlib.suppress(KeyError):
                    self.runs[workflow_id].request_cancel("cancelled")


def _deadline(engine: Engine, timeout: float | None) -> float | None:
    return None if timeout is None else engine.clock.now() + timeout
