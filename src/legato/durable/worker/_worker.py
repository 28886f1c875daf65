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
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ..._clock import SystemClock
from ..._errors import LegatoError
from ...store import (
    Claimed,
    ClaimRequest,
    Lease,
    NewWorkflow,
    QueueLimits,
    WorkerRecord,
    WorkflowRecord,
)
from ..engine import Aborted, Engine, Run, WorkflowCode, detached, execute, load_run
from ..workflow import registered_names
from ._bus import WakeBus
from ._lease_keeper import LeaseKeeper
from ._news import SAFETY_POLL
from ._recovery import sort_claimed, stop_poisoned
from ._scheduler import Scheduler
from ._starting import Starting

__all__ = ["Worker", "new_owner_id"]

log = logging.getLogger("legato.worker")

_BATCH = 100
# A full worker claims once a slot frees; finishes within this long of the first are
# served by the same claim. Refilling one slot per finish cost a claim, a
# next_lease_expiry and a next_wake per workflow when draining a backlog.
_REFILL_AFTER = 0.002  # seconds
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0  # seconds between attempts of a run after store errors
# A run that ended so makes nothing claimable, unless its end frees a slot (this worker
# was full, a queue caps running workflows) or wakes its parent: the claim loop is left
# asleep, sparing a claim, next_lease_expiry and next_wake per finished workflow. A run
# that suspended pokes: its wake-up time may come before the loop's.
_ENDED = frozenset({"succeeded", "failed", "cancelled"})


def new_owner_id() -> str:
    """A worker id that names the machine and process, for people reading the store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Runs workflows for one Runtime, up to ``concurrency`` at a time."""

    def __init__(self, engine: Engine, wall: SystemClock, bus: WakeBus, *, concurrency: int,
                 lease: float, stall_limit: float) -> None:
        self.engine = engine
        self.bus = bus
        self.wall = wall  # real time, as the store's clock tells it
        self.queues: dict[str, QueueLimits] = {}  # the queues whose workflows it runs
        self.concurrency = concurrency
        self.lease = lease
        self.poll = SAFETY_POLL  # the store's news wakes it; polling catches lost news
        self.tasks: dict[str, asyncio.Task[str | None]] = {}
        self.owners: dict[str, str] = {}  # the attempt each task runs, by workflow id
        # until when (time.monotonic) each run's lease is surely held, by workflow id:
        # from when the claim, create or renewal that wrote it was sent
        self.held: dict[str, float] = {}
        self.runs: dict[str, Run] = {}
        self._fresh: set[str] = set()  # created here and not run yet: no history to load
        self._starting = Starting()  # claimed, not started yet
        # the rows of runs that ended here while a client waited on them (see awaiting)
        self._awaited: dict[str, int] = {}
        self._ended: dict[str, WorkflowRecord] = {}
        self._attempt = itertools.count(1)
        self._stopping = False
        self._keeper = LeaseKeeper(engine.store, wall, lease=lease, stall_limit=stall_limit,
                                   leases=self.leases, on_cancel=self._cancelled,
                                   on_renewed=self._renewed,
                                   describe=self.describe)
        self._started_at = wall.now()
        self._reserved = 0
        self._claimed_at: float | None = None  # durable time of the last claim
        self._wakeup = asyncio.Event()
        self._retime = asyncio.Event()  # a new wake-up time was stored: read it, claim nothing
        self._loops: list[asyncio.Task[None]] = []
        self.scheduler = Scheduler(self)

    async def start(self) -> None:
        await self.scheduler.register_decorated()  # first: a failure here leaves nothing running
        await self._keeper.start()
        self._loops = [asyncio.create_task(self._claim_loop(), name="legato-claim")]
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop taking work, stop running workflows, give their leases back.

        A run unwinds as when it is unloaded: ``finally`` blocks run, nothing
        more is recorded, sagas don't compensate; another worker resumes it.
        """
        self._stopping = True  # an attempt that stops on a store error is not retried now
        await self.scheduler.stop()
        running = list(self.tasks.items())
        leases = self.leases()  # read now: each task forgets its own as it ends
        for loop in self._loops:
            loop.cancel()
        for workflow_id, task in running:
            run = self.runs.get(workflow_id)
            if run is not None:
                run.stop()
            task.cancel()  # also between attempts, where no body runs
        await asyncio.gather(*self._loops, *(t for _, t in running), return_exceptions=True)
        await self._keeper.stop()
        await self.engine.store.release(leases)
        await self.engine.store.retire(self.engine.owner)

    def describe(self) -> WorkerRecord:
        """This worker as the store lists it (``seen_at``: when it was described)."""
        return WorkerRecord(self.engine.owner, tuple(registered_names()),
                            tuple(self.queues), self._started_at, self.wall.now())

    def leases(self) -> list[Lease]:
        """The leases of the runs going on here (called from the lease keeper's thread too)."""
        return list(self.owners.copy().items())  # copy(): atomic, while the loop changes it

    def holds(self, workflow_id: str, owner: str) -> bool:
        # Held for half a lease more at least: renewals come every quarter of one, so
        # anything less means they lag (a slow claim or insert, a stall), and a step
        # started now could outlive the lease; the run then renews first (confirm_lease)
        return (self.owners.get(workflow_id) == owner
                and self.held.get(workflow_id, 0.0) > time.monotonic() + self.lease / 2)

    async def renew(self, workflow_id: str, owner: str) -> bool:
        sent = time.monotonic()
        renewal = await self.engine.store.heartbeat([(workflow_id, owner)], self.lease_until())
        if workflow_id not in renewal.renewed:
            return False
        self._renewed([(workflow_id, owner)], sent)
        return True

    def _renewed(self, leases: list[Lease], sent: float) -> None:
        """``leases`` were extended by a write sent at ``sent`` (also from the keeper's thread)."""
        for workflow_id, owner in leases:
            if self.owners.get(workflow_id) == owner:
                self.held[workflow_id] = max(self.held.get(workflow_id, 0.0), sent + self.lease)

    def lease_until(self) -> float:
        return self.wall.now() + self.lease

    def new_owner(self) -> str:
        """A name for one attempt: a workflow is written to only by its latest attempt."""
        return f"{self.engine.owner}#{next(self._attempt)}"

    def reserve(self) -> bool:
        """Hold a slot for a workflow about to be created here; False when full."""
        if len(self.tasks) + self._reserved >= self.concurrency:
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        self._reserved -= 1

    def launch(self, wf: WorkflowCode, record: WorkflowRecord) -> None:
        """Run ``record`` (claimed or created by this worker) unless a task here runs it."""
        if record.id in self.tasks:
            # a row whose lease lapsed under our own running task (a slow insert, a
            # stall) and was claimed back: never started a second time
            self.owners[record.id] = record.owner or ""
            run = self.runs.get(record.id)
            if run is not None:
                run.owner = record.owner or ""  # the task goes on as the new attempt
            return
        # detached: a child launched from its parent's code is no branch of the parent
        task = detached(self._run(wf, record), name=f"legato-workflow:{record.id}")
        self.tasks[record.id] = task
        self.owners[record.id] = record.owner or ""

    async def admit(self, wf: WorkflowCode, new: NewWorkflow, *, here: bool
                    ) -> WorkflowRecord | None:
        """Store ``new``; run it in this worker at once if ``here`` and a slot is free.

        Returns the existing row when the id was taken (nothing written). The
        one way a workflow is created by a runtime, for ``rt.start`` and for
        children. Once stored, it is launched even if the caller is cancelled
        meanwhile: a created row that no task runs would wait for its lease to lapse.
        """
        here = here and self.reserve()
        try:
            if here:
                new = replace(new, owner=self.new_owner())
            # shielded: a cancelled caller must not leave a stored run without its task
            return await asyncio.shield(detached(self._admit(wf, new, here)))
        finally:
            if here:  # held until the launch: a claim meanwhile must not take the slot
                self.unreserve()

    async def _admit(self, wf: WorkflowCode, new: NewWorkflow, here: bool
                     ) -> WorkflowRecord | None:
        if here:
            # from now, when the insert is sent, as ``held`` counts: this task may start
            # long after the caller's (thousands of starts at once)
            new = replace(new, lease_until=self.lease_until())
        sent = time.monotonic()
        # Renewed from the moment the row exists, not from its launch: under load the
        # insert and its reply can take most of a lease, and a row no renewal covers by
        # then is taken over by another worker while its first step runs here
        early = here and new.id not in self.owners and new.owner is not None
        if early:
            self.owners[new.id] = new.owner or ""
        try:
            existing = await self.engine.store.create(new)
        finally:
            if early and new.id not in self.tasks:
                del self.owners[new.id]  # launched below, or not ours to run
        if existing is None and here:
            if new.copy_from is None and new.id not in self.tasks and self._reads_history_only():
                self._fresh.add(new.id)  # just inserted, with no records: none to read
            self.launch(wf, _created(new))
            if self.owners.get(new.id) == new.owner:  # not run here already
                self.held[new.id] = max(self.held.get(new.id, 0.0), sent + self.lease)
        elif existing is None:
            self.poke()
        return existing

    def poke(self) -> None:
        """Look for work now (a workflow was stored, woken, or a slot freed)."""
        self._wakeup.set()

    def retime(self) -> None:
        """A workflow became due at a later time (a timer, a delayed start): read when."""
        self._retime.set()

    # -- news for runs in this process ---------------------------------------------

    def signalled(self, workflow_id: str) -> None:
        self.notify(workflow_id)

    def notify(self, workflow_id: str) -> None:
        """Something a workflow may wait for arrived (a signal, a child's end)."""
        self.bus.wake(workflow_id)
        if workflow_id not in self.runs:
            self.poke()  # it may be waiting in the store

    def cancel_local(self, workflow_id: str) -> bool:
        run = self.runs.get(workflow_id)
        if run is None:
            return False
        run.request_cancel("cancelled")
        return True

    # -- Host (what runs ask of their worker) ----------------------------------------

    async def start_child(
        self, wf: WorkflowCode, child_id: str, data: bytes, parent: Run,
        queue: QueueLimits | str | None = None,
    ) -> WorkflowRecord | None:
        name = None if queue is None else self._child_queue(queue)
        return await self.admit(wf, NewWorkflow(
            child_id, wf.name, data, None, 0.0, parent_id=parent.id,
            deadline=_deadline(self.engine, wf.timeout), queue=name), here=name is None)

    def _child_queue(self, queue: QueueLimits | str) -> str:
        """The name of the queue a child goes on; a new ``Queue`` is declared in this worker."""
        if isinstance(queue, str):
            if queue not in self.queues:
                raise ValueError(
                    f"queue {queue!r} is not declared in this Runtime, so its worker would "
                    f"never run the child; declare it: Runtime(..., queues=[legato.Queue("
                    f"{queue!r}, ...)]), or pass the Queue itself")
            return queue
        known = self.queues.setdefault(queue.name, queue)
        if known != queue:
            raise ValueError(
                f"queue {queue.name!r} is declared here with other limits ({known!r}, not "
                f"{queue!r}); declare each queue once, with the same limits in every process")
        return queue.name

    def cancelled(self, workflow_id: str) -> None:
        if not self.cancel_local(workflow_id):
            self.notify(workflow_id)

    def local_task(self, workflow_id: str) -> asyncio.Task[Any] | None:
        return self.tasks.get(workflow_id)

    def event_set(self, workflow_id: str) -> None:
        self.bus.wake(workflow_id)

    def watch(self, workflow_id: str) -> asyncio.Event:
        return self.bus.watch(workflow_id)

    def unwatch(self, workflow_id: str, event: asyncio.Event) -> None:
        self.bus.unwatch(workflow_id, event)

    # -- loops -------------------------------------------------------------------------

    async def _run(self, wf: WorkflowCode, record: WorkflowRecord) -> str | None:
        status: str | None = None
        try:
            status = await self._attempts(wf, record)
        finally:
            full = len(self.tasks) + self._reserved >= self.concurrency
            self.runs.pop(record.id, None)
            del self.tasks[record.id]
            owner = self.owners.pop(record.id)
            self.held.pop(record.id, None)
            self._fresh.discard(record.id)  # stopped before its first attempt
            self._starting.started(record.id)
            if status not in _ENDED or full or record.parent_id is not None \
                    or self.caps_running():
                self.poke()
        if status is None and not self._stopping:
            await self._give_back(record.id, owner)
        if status is not None and status != "waiting":
            self.event_set(record.id)  # readers of events stop waiting on a finished run
        return status

    async def _give_back(self, workflow_id: str, owner: str) -> None:
        """Release the lease of a run that stopped without ending (a lost lease, mostly).

        So another worker need not wait for it to lapse; a row another worker
        took meanwhile is not touched (the release is fenced by ``owner``).
        """
        try:
            await self.engine.store.release([(workflow_id, owner)])
        except LegatoError:
            log.warning("could not give back the lease of workflow %r; it is claimable once "
                        "it lapses", workflow_id)

    @contextlib.contextmanager
    def awaiting(self, workflow_id: str) -> Iterator[Callable[[], WorkflowRecord | None]]:
        """While a client waits for a local run's end: what gives its row once it ended.

        The row is the one this worker's finish stored (that write was
        acknowledged), so the waiter needs no read of its own.
        """
        self._awaited[workflow_id] = self._awaited.get(workflow_id, 0) + 1
        try:
            yield lambda: self._ended.get(workflow_id)
        finally:
            left = self._awaited.pop(workflow_id) - 1
            if left:
                self._awaited[workflow_id] = left
            else:
                self._ended.pop(workflow_id, None)

    def caps_running(self) -> bool:
        """Whether a queue served here limits running workflows (a finish frees a slot)."""
        return bool(self.queues) and any(q.caps_running for q in self.queues.values())

    async def _attempts(self, wf: WorkflowCode, record: WorkflowRecord) -> str | None:
        """Run ``record`` until it ends; after a store error, again from its checkpoint."""
        backoff = _RETRY_FIRST
        while True:
            run: Run | None = None
            try:
                owner = self.owners[record.id]
                if record.owner != owner:  # claimed back meanwhile (replace() costs ~5 µs)
                    record = replace(record, owner=owner)
                fresh = record.id in self._fresh
                self._fresh.discard(record.id)  # a retry reads what the first attempt wrote
                try:
                    run = await load_run(self.engine, record, self, fresh=fresh)
                finally:
                    self._starting.started(record.id)  # or failed to: claims go on
                self.runs[record.id] = run
                status = await execute(self.engine, wf, record, run)
                if run.ended is not None and record.id in self._awaited:
                    self._ended[record.id] = _finished(record, *run.ended)
            except LegatoError:
                log.exception("workflow %r stopped on a store error; retrying in %.1f s",
                              record.id, backoff)
            else:
                if status == "continued":  # the next run, at once and in this task
                    record = await self._next_run(record)
                    backoff = _RETRY_FIRST
                    continue
                if not isinstance(run.unwinding, Aborted):
                    return status
            finally:
                if run is not None:
                    self.bus.unwatch(record.id, run.news)
            # Not again until a write goes through: an attempt replayed while the disk
            # is full or the server is gone would run its unrecorded step every time.
            while True:
                if self._stopping:
                    return None  # another worker resumes it from its last checkpoint
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_MAX)
                ready = await self._still_ours(record.id)
                if ready is not None:
                    break
            if not ready:
                return None  # taken over meanwhile: the new owner goes on

    async def _still_ours(self, workflow_id: str) -> bool | None:
        """After a store error: ``None`` while the store takes no write; else whether we hold it.

        The probe is a renewal of the run's own lease: a real write.
        """
        try:
            return await self.renew(workflow_id, self.owners[workflow_id])
        except LegatoError:
            return None

    async def _next_run(self, record: WorkflowRecord) -> WorkflowRecord:
        """The row of the run that ``record``'s run continued as (its new input and run id)."""
        while True:
            try:
                current = await self.engine.store.get(record.id)
            except LegatoError:
                log.exception("reading workflow %r failed; retrying", record.id)
                await asyncio.sleep(_RETRY_FIRST)
                continue
            return current if current is not None else record

    async def _claim_loop(self) -> None:
        backoff = _RETRY_FIRST
        while True:
            self._wakeup.clear()
            try:
                free = self._free()
                if free > 0 and len(await self._claim(free)) == free:
                    await self._starting.none_left()
                    continue  # there may be more
                if self._free() > 0:
                    await self._sleep_until_due()
                else:
                    await self._until_room()
            except LegatoError:
                # an outage must not end the loop: the worker would never claim again
                log.exception("the worker could not reach the store; retrying in %.1f s",
                              backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_MAX)
            else:
                backoff = _RETRY_FIRST

    def _reads_history_only(self) -> bool:
        """Whether a run's history is what its store's checkpoints hold.

        Not in a replay, whose scratch store answers with the recorded history.
        """
        return not getattr(self.engine.store, "prerecorded", False)

    def _free(self) -> int:
        """How many workflows the next claim may take."""
        return min(self.concurrency - len(self.tasks) - self._reserved, _BATCH)

    async def _until_room(self) -> None:
        """Full: nothing due can be taken, so no store read until a slot frees (a poke)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.poll)
        if self._free() < _BATCH:
            await asyncio.sleep(_REFILL_AFTER)  # the finishes just behind this one

    async def _claim(self, limit: int) -> list[Claimed]:
        clock_now = self.engine.clock.now()
        self._reserved += limit  # a start meanwhile must not take the slots being claimed
        owner, sent = self.new_owner(), time.monotonic()
        try:
            claimed = await self.engine.store.claim(ClaimRequest(
                owner=owner, lease_until=self.lease_until(), real_now=self.wall.now(),
                durable_now=clock_now, limit=limit, names=registered_names(),
                queues=list(self.queues.values()), running=list(self.owners.values())))
        finally:
            self._reserved -= limit
        for record in claimed:
            self.held[record.id] = sent + self.lease
        self._claimed_at = clock_now
        runnable, poisoned = sort_claimed(claimed)
        for wf, record in runnable:
            if record.id not in self.tasks:
                self._starting.add(record.id)
                if record.fresh and self._reads_history_only():
                    self._fresh.add(record.id)  # no checkpoint yet: no history to read
            self.launch(wf, record)
        for record, most in poisoned:  # after the launches: a store error here stops none
            self.held.pop(record.id, None)
            if await stop_poisoned(self.engine, record, most):
                self.event_set(record.id)
        return claimed

    async def _sleep_until_due(self) -> None:
        """Until poked, a waiting workflow's wake-up time, a lease lapses, or a poll tick.

        News of a new timer reads the next wake-up again (one store call), not
        a claim and both reads: a suspend or a delayed start elsewhere is not
        work for this worker until it falls due.
        """
        store, clock = self.engine.store, self.engine.clock
        self._retime.clear()  # a timer stored from now on is read below, or wakes the wait
        expiry = await store.next_lease_expiry()
        poll = self.poll
        # A lease that lapsed over a second ago and is still unclaimed belongs to code
        # this worker lacks: retrying for it would spin, so it no longer shortens the wait.
        until = None if expiry is None else expiry - self.wall.now()
        timeout = poll if until is None or until < -1.0 else max(0.01, min(poll, until + 0.01))
        deadline = time.monotonic() + timeout
        # times up to the last claim were claimable then: taken, or blocked until a slot
        # frees (which pokes); waiting on them would spin
        wake_at = await store.next_wake(self._claimed_at, list(self.queues.values()))
        while True:
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait()),
                                                asyncio.ensure_future(self._retime.wait())]
            if wake_at is not None:
                waits.append(asyncio.ensure_future(clock.sleep_until(wake_at)))
            try:
                done, _ = await asyncio.wait(waits, timeout=deadline - time.monotonic(),
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if done != {waits[1]} or self._wakeup.is_set():
                return  # poked, due, timed out: claim
            self._retime.clear()
            # Every due time, not only those after the last claim: a timer that fell
            # due before that claim but was stored after it is due now, and claimed.
            new = await store.next_wake(None, list(self.queues.values()))
            if new is not None and new <= clock.now():
                return
            if new is not None and (wake_at is None or new < wake_at):
                wake_at = new

    def _cancelled(self, workflow_ids: list[str]) -> None:
        for workflow_id in workflow_ids:  # asked for by another process
            with contextlib.suppress(KeyError):
                self.runs[workflow_id].request_cancel("cancelled")


def _deadline(engine: Engine, timeout: float | None) -> float | None:
    return None if timeout is None else engine.clock.now() + timeout


def _finished(record: WorkflowRecord, status: str, result: bytes | None,
              error: bytes | None) -> WorkflowRecord:
    """The row ``record``'s run left once its finish was stored, without reading it back."""
    now = time.time()
    return replace(record, status=status, result=result, error=error, owner=None,
                   lease_until=0.0, wake_at=None, cancel=False, updated_at=now,
                   finished_at=now)


def _created(new: NewWorkflow) -> WorkflowRecord:
    """The row ``new`` became, without reading it back."""
    now = time.time()
    return WorkflowRecord(
        new.id, new.name, "running", new.input, None, None, new.owner, new.lease_until,
        None, new.deadline, False, new.parent_id, now, now, None, new.queue, new.priority,
        new.not_before, new.dedup_key, new.run_id)
